// Regression: a GraphQL body with a Content-Encoding was not read at all, taken for one GitLab
// cannot parse either. Nothing on GitLab's way to /api/graphql inflates a request body (Workhorse
// only git's pack routes, CompressedJson a few npm and error tracking routes), and neither Rack nor
// Rails looks at the header: they parse the bytes as sent. So a plain form labelled `gzip` (or any
// made-up coding) under the URL's allowlist mutation, `_json[][query]=...` (a batch, which wins
// over the URL's `query`), was answered by the gate as the URL's mutation and removed the entry,
// where GitLab's stack runs the body's batch. The body is now read as sent, whatever its coding.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { ADMIN, adminGate } from '../helpers/admin-gate.ts'

const q = encodeURIComponent
const REMOVE_APP = 'mutation { ciJobTokenScopeRemoveProject(input: {projectPath: "acme/lib", targetProjectPath: "acme/platform/app"}) { errors } }'
const GITLAB = '{ currentUser { id } }'
const SEEDED = ['project:100:read_packages', 'group:10:default']

function answer (req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET' && /^\/api\/v4\/groups\/acme\?/.test(req.url ?? '')) {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ id: 10, full_path: 'acme' }))
    return
  }
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ upstream: true, data: {} }))
}

async function entries (g: TestGate): Promise<string[]> {
  return ((await g.store.get(200))?.entries ?? []).map(e => `${e.targetType}:${e.targetId}:${e.defaultPermissions ? 'default' : e.jobTokenPolicies.join('+')}`)
}

function graphqlSeen (g: TestGate): string[] {
  return g.seen.filter(s => s.url.includes('graphql')).map(s => `${s.method} ${s.url}`)
}

for (const encoding of ['gzip', 'x-made-up', '']) {
  test(`GraphQL: the URL's allowlist mutation under an untyped batch labelled Content-Encoding "${encoding}" is ambiguous, nothing changed or forwarded`, async t => {
    const g = await adminGate(t)
    g.respond = answer
    const res = await send(g.url, 'POST', `/api/graphql?query=${q(REMOVE_APP)}`, { 'content-encoding': encoding, 'private-token': ADMIN }, `_json[][query]=${q(GITLAB)}`)
    assert.equal(res.status, 400, res.text)
    assert.equal(res.json().code, 'GRAPHQL_AMBIGUOUS_REQUEST', res.text)
    assert.deepEqual(await entries(g), SEEDED)
    assert.deepEqual(graphqlSeen(g), [], 'not forwarded')
  })
}

test('GraphQL: a typed form labelled gzip whose batch covers the URL\'s allowlist mutation is not the gate\'s, and is not forwarded either', async t => {
  const g = await adminGate(t)
  g.respond = answer
  const res = await send(g.url, 'POST', `/api/graphql?query=${q(REMOVE_APP)}`, { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip', 'private-token': ADMIN }, `_json[][query]=${q(GITLAB)}`)
  // GitLab runs the batch: the gate does not answer the mutation; the identity stage does not
  // pass a form it cannot read as GitLab's finders would.
  assert.equal(res.status, 415, res.text)
  assert.equal(res.json().code, 'BODY_ENCODING_NOT_INSPECTABLE', res.text)
  assert.deepEqual(await entries(g), SEEDED)
  assert.deepEqual(graphqlSeen(g), [], 'not forwarded')
})

test('GraphQL: a real gzip body GitLab cannot parse leaves the URL\'s mutation the gate\'s, as a broken JSON body does', async t => {
  const g = await adminGate(t)
  g.respond = answer
  const res = await send(g.url, 'POST', `/api/graphql?query=${q(REMOVE_APP)}`, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'private-token': ADMIN }, gzipSync(JSON.stringify({ query: GITLAB })))
  assert.equal(res.status, 200, res.text)
  assert.deepEqual(res.json().data.ciJobTokenScopeRemoveProject.errors, [])
  assert.deepEqual(await entries(g), ['group:10:default'])
  assert.deepEqual(graphqlSeen(g), [], 'not forwarded')
})
