// Finding: the users' package rules took the request's credentials and its Cookie header as one
// list, told apart by their text, so a token and a Cookie header of the same text were one
// credential, kept as the cookies. A Developer who sent their personal access token as
// PRIVATE-TOKEN (or Bearer) and the same text as the whole Cookie header was asked of GitLab as
// cookies, which sign no one in, and the token was never checked: GitLab took the token and
// uploaded, deleted or ran the model registry's GraphQL mutation as the Developer where the
// project keeps those to Maintainers. The cookies are a credential of their own now, whatever
// text they hold.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { rawRequest, send } from '../helpers/http.ts'

const json = { 'content-type': 'application/json' }
const UPLOAD = '/api/v4/projects/200/packages/generic/tool/1.0/tool.bin'
const BY_PATH = '/api/v4/projects/acme%2Flib/packages/generic/tool/1.0/tool.bin'
const MODEL_DELETE = JSON.stringify({ query: 'mutation { mlModelDelete(input: {projectPath: "acme/lib", id: "gid://gitlab/Ml::Model/1"}) { errors } }' })

const ruled = async (t: Parameters<typeof adminGate>[0], env: Record<string, string> = {}): Promise<Awaited<ReturnType<typeof adminGate>>> => {
  const g = await adminGate(t, env)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { generic: { write: 'maintainer', delete: 'maintainer' }, ml_model: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  return g
}

test('a Developer\'s token sent again as the Cookie header is still checked', async t => {
  const g = await ruled(t)
  const before = g.seen.length
  for (const [name, method, path, headers] of [
    ['PRIVATE-TOKEN', 'PUT', UPLOAD, { 'private-token': USERS.developer, cookie: USERS.developer }],
    ['Bearer', 'PUT', UPLOAD, { authorization: `Bearer ${USERS.developer}`, cookie: USERS.developer }],
    ['private_token in the query', 'PUT', `${UPLOAD}?private_token=${USERS.developer}`, { cookie: USERS.developer }],
    ['by the project\'s path', 'PUT', BY_PATH, { 'private-token': USERS.developer, cookie: USERS.developer }],
    ['a delete', 'DELETE', '/api/v4/projects/200/packages/5', { 'private-token': USERS.developer, cookie: USERS.developer }]
  ] as const) {
    const answer = await send(g.url, method, path, headers, method === 'PUT' ? 'bytes' : undefined)
    assert.equal(answer.status, 403, `${name}: ${answer.text}`)
    assert.equal(answer.json().code, 'PACKAGE_MAINTAINER_ONLY', name)
  }
  const graphql = await send(g.url, 'POST', '/api/graphql', { ...json, authorization: `Bearer ${USERS.developer}`, cookie: USERS.developer }, MODEL_DELETE)
  assert.equal(graphql.status, 403, `GraphQL: ${graphql.text}`)
  assert.equal(graphql.json().code, 'PACKAGE_MAINTAINER_ONLY')
  assert.equal(g.seen.length, before, 'nothing reached GitLab')

  // A Maintainer's token with the same text as cookies still passes: the cookies sign no one in.
  const maintainer = await send(g.url, 'PUT', UPLOAD, { 'private-token': USERS.maintainer, cookie: USERS.maintainer }, 'bytes')
  assert.equal(maintainer.status, 200, maintainer.text)
})

test('forward-auth: a Developer\'s token sent again as the Cookie header is still checked', async t => {
  const g = await ruled(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_ORIGINAL: 'request-line' })
  const port = g.gate.authAddress()!.port
  const answer = await rawRequest(port, [`DELETE /api/v4/projects/200/packages/5 HTTP/1.1`, `Private-Token: ${USERS.developer}`, `Cookie: ${USERS.developer}`])
  assert.equal(answer.status, 403, answer.body)
  assert.equal(JSON.parse(answer.body).code, 'PACKAGE_MAINTAINER_ONLY')
})
