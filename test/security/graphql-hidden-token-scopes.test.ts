// A fine-grained personal access token without "Personal Access Token: Read" gets 403 from
// `GET /api/v4/personal_access_tokens/self`: GitLab will not describe it to the gate. Passing it
// on as "not fine-grained" would let it walk around the enforcement at /api/graphql, the gate's
// own allowlist mutations included (answered from the gate's store, never by GitLab). Such a token
// is refused, 403 GRAPHQL_TOKEN_SCOPES_HIDDEN, until GitLab describes it or the operator registers
// its SHA-256; the refusal is not kept, so either counts at once.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { scrape, total } from '../helpers/metrics.ts'

const ADMIN = 'gate-operator-secret'
const TOKEN = 'glpat-fine-grained-without-read-self'
const HASH = createHash('sha256').update(TOKEN).digest('hex')
// What GitLab would show, had the token the permission: everything on acme/lib (200).
const TOKENS: Record<string, FakeToken> = {
  [TOKEN]: { userId: 51, scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'create_job_token_scope_allowlist', 'delete_job_token_scope_allowlist'], project_id: 200 }] }
}
// A Maintainer of acme/lib who sees acme/platform/app: the Maintainer check alone would let the mutations through.
const USERS = { [TOKEN]: { id: 51, username: 'fg', access: { 200: 40, 100: 20 } } }
const pat = { 'private-token': TOKEN }
const ADD = 'mutation { ciJobTokenScopeAddProject(input: { projectPath: "acme/lib", targetProjectPath: "acme/platform/app" }) { errors } }'
const REMOVE = 'mutation { ciJobTokenScopeRemoveProject(input: { projectPath: "acme/lib", targetProjectPath: "acme/platform/app" }) { errors } }'
const READ_LIB = '{ project(fullPath: "acme/lib") { id } }'
const READ_OTHER = '{ project(fullPath: "other/tools") { id } }'

function assertHidden (answer: { status: number, body: any }, what: string): void {
  assert.equal(answer.status, 403, what)
  assert.equal(answer.body.code, 'GRAPHQL_TOKEN_SCOPES_HIDDEN', what)
  assert.match(answer.body.message, /Personal Access Token: Read/, `${what}: the message says what to do`)
  assert.match(answer.body.message, /SHA-256/, what)
  assert.equal(typeof answer.body.request_id, 'string', what)
}

test('GitLab answers 403 to self: allowlist mutations and GitLab queries are refused, nothing written or forwarded; a registration lets the permitted ones through', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS, env: { GATE_ADMIN_TOKEN: ADMIN } })
  g.tokenLookupFails = 403
  const entries = async (): Promise<number> => (await g.gate.grants.get(200))?.entries.length ?? 0

  assertHidden(await postGraphql(g.url, { query: ADD }, pat), 'the gate\'s own mutation')
  assert.equal(await entries(), 0, 'the store is unchanged')
  assertHidden(await postGraphql(g.url, { query: READ_LIB }, pat), 'a GitLab query')
  assertHidden(await postGraphql(g.url, { query: READ_LIB }, { authorization: `Bearer ${TOKEN}` }), 'a GitLab query, Bearer')
  const get = await fetch(`${g.url}/api/graphql?query=${encodeURIComponent(READ_LIB)}&private_token=${TOKEN}`)
  assertHidden({ status: get.status, body: await get.json() }, 'a GitLab query over GET, token in the URL')
  assert.equal(g.upstream.length, 0, 'nothing forwarded')
  assert.equal(g.tokenCalls(), 4, 'GitLab asked each time: the refusal is not kept')

  const { samples } = await scrape(g.healthUrl)
  assert.equal(total(samples, 'job_token_gate_graphql_decisions_total', { decision: 'deny', reason: 'GRAPHQL_TOKEN_SCOPES_HIDDEN' }), 4)
  assert.equal(g.logs.filter(l => l.reason === 'GRAPHQL_TOKEN_SCOPES_HIDDEN' && l.decision === 'deny').length, 4, 'one refusal line per request')

  // The operator registers the token's hash: only what the registration grants passes.
  const registration = { user_id: 51, granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'create_job_token_scope_allowlist'], project_id: 200 }] }
  const put = await fetch(`${g.url}/api/v4/gate/graphql_token_scopes/${HASH}`, { method: 'PUT', headers: { 'private-token': ADMIN, 'content-type': 'application/json' }, body: JSON.stringify(registration) })
  assert.equal(put.status, 200)

  const added = await postGraphql(g.url, { query: ADD }, pat)
  assert.deepEqual(added.body.data.ciJobTokenScopeAddProject.errors, [])
  assert.equal(await entries(), 1, 'the permitted mutation ran')
  const removeRefused = await postGraphql(g.url, { query: REMOVE }, pat)
  assert.equal(removeRefused.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.equal(removeRefused.body.errors[0].extensions.permission, 'delete_job_token_scope_allowlist', 'the registration, not GitLab\'s hidden record, decides')
  assert.equal(await entries(), 1)

  assert.deepEqual((await postGraphql(g.url, { query: READ_LIB }, pat)).body, { data: { upstream: true } })
  const otherRefused = await postGraphql(g.url, { query: READ_OTHER }, pat)
  assert.equal(otherRefused.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.equal(g.upstream.length, 1, 'only the permitted query reached GitLab')
  assert.ok(!JSON.stringify(g.logs).includes(TOKEN), 'the token is never logged')
})

test('the permission granted in GitLab counts on the next request', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS })
  g.tokenLookupFails = 403
  assertHidden(await postGraphql(g.url, { query: READ_LIB }, pat), 'before')
  g.tokenLookupFails = undefined
  assert.deepEqual((await postGraphql(g.url, { query: READ_LIB }, pat)).body, { data: { upstream: true } })
  const refused = await postGraphql(g.url, { query: READ_OTHER }, pat)
  assert.equal(refused.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING', 'GitLab\'s record decides now')
  assert.equal(g.upstream.length, 1)
})
