// A fine-grained token GitLab will not describe to the gate (403 to /personal_access_tokens/self:
// no Personal Access Token: Read): the operator registers its scopes by the token's SHA-256 at
// /api/v4/gate/graphql_token_scopes, and the enforcement at /api/graphql reads them.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { postGraphql, startGraphqlGate } from '../helpers/graphql-gate.ts'

const ADMIN = 'gate-operator-secret'
const TOKEN = 'glpat-undescribed-fine-grained'
const HASH = createHash('sha256').update(TOKEN).digest('hex')

test('registered scopes decide a token GitLab answers 403 for; only the operator registers; the token never travels', async (t) => {
  const g = await startGraphqlGate(t, { tokens: {}, env: { GATE_ADMIN_TOKEN: ADMIN } })
  g.tokenLookupFails = 403
  const query = { query: '{ project(fullPath: "other/tools") { id } }' }
  const before = await postGraphql(g.url, query, { 'private-token': TOKEN })
  assert.equal(before.status, 403)
  assert.equal(before.body.code, 'GRAPHQL_TOKEN_SCOPES_HIDDEN', 'unregistered: refused, not passed')

  const url = `${g.url}/api/v4/gate/graphql_token_scopes/${HASH}`
  const registration = { user_id: 7, granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
  const asUser = await fetch(url, { method: 'PUT', headers: { 'private-token': TOKEN, 'content-type': 'application/json' }, body: JSON.stringify(registration) })
  assert.equal(asUser.status, 403)
  assert.equal(((await asUser.json()) as { code: string }).code, 'GRAPHQL_TOKEN_REGISTRY_OPERATOR_ONLY')
  const put = await fetch(url, { method: 'PUT', headers: { 'private-token': ADMIN, 'content-type': 'application/json' }, body: JSON.stringify(registration) })
  assert.equal(put.status, 200)
  const listed = await (await fetch(`${g.url}/api/v4/gate/graphql_token_scopes`, { headers: { 'private-token': ADMIN } })).json() as Array<{ token_sha256: string }>
  assert.deepEqual(listed.map(e => e.token_sha256), [HASH])

  const refused = await postGraphql(g.url, query, { 'private-token': TOKEN })
  assert.equal(refused.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING', 'the registration is read at once')
  const allowed = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id } }' }, { 'private-token': TOKEN })
  assert.deepEqual(allowed.body, { data: { upstream: true } })
  assert.equal(g.upstream.length, 1, 'only the allowed query reached GitLab: not the refusals, nor the registry\'s requests')
  assert.ok(!JSON.stringify(g.logs).includes(TOKEN))

  const bad = await fetch(`${g.url}/api/v4/gate/graphql_token_scopes/${TOKEN}`, { method: 'PUT', headers: { 'private-token': ADMIN, 'content-type': 'application/json' }, body: '{}' })
  assert.equal(bad.status, 400)
  assert.ok(!(await bad.text()).includes(TOKEN), 'a token sent as the path is not echoed')
  assert.ok(!JSON.stringify(g.logs).includes(TOKEN), 'nor logged')
})
