// Fine-grained personal access tokens at /api/graphql, through real sockets: each boundary kind
// (Project, Group, Instance, User), the target taken from arguments and variables, and what
// passes untouched (no token, a legacy token).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { scrape, total } from '../helpers/metrics.ts'

const TOKENS: Record<string, FakeToken> = {
  // Reads acme/lib only (a selected project).
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] },
  // Reads and creates vulnerabilities under the acme group (and its subgroups).
  'glpat-acme-group': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_group', 'read_project', 'create_vulnerability'], group_id: 10 }] },
  // Instance runners, and creating organizations.
  'glpat-instance': { userId: 7, scopes: [{ access: 'instance', permissions: ['read_runner', 'create_organization'] }] },
  // Its own preferences.
  'glpat-user': { userId: 7, scopes: [{ access: 'user', permissions: ['update_preference', 'read_preference'] }] },
  // A legacy token: GitLab decides.
  'glpat-legacy': { userId: 7 }
}

const pat = (token: string): Record<string, string> => ({ 'private-token': token })

test('Project boundary: a selected project is reached, another project is refused with GitLab\'s GraphQL error shape', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const allowed = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id name } }' }, pat('glpat-lib-reader'))
  assert.equal(allowed.status, 200)
  assert.deepEqual(allowed.body, { data: { upstream: true } }, 'forwarded to GitLab')
  assert.equal(g.upstream.length, 1)

  const refused = await postGraphql(g.url, { query: '{ project(fullPath: "other/tools") { id } }' }, pat('glpat-lib-reader'))
  assert.equal(refused.status, 200, 'GraphQL answers refusals with 200, as GitLab does')
  assert.equal(refused.body.data, null)
  assert.equal(refused.body.errors.length, 1)
  const error = refused.body.errors[0]
  assert.equal(error.extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.equal(error.extensions.permission, 'read_project')
  assert.equal(error.extensions.boundary, 'Project')
  assert.match(error.message, /^Access denied: This operation requires a fine-grained personal access token with the following project permissions: \[Project: Read\]/, 'GitLab\'s wording')
  assert.match(error.message, /other\/tools/, 'the message names the target')
  assert.equal(g.upstream.length, 1, 'nothing forwarded')
  assert.ok(!refused.text.includes('glpat-lib-reader'), 'the token is never in an answer')
  const line = g.logs.find(l => l.graphql === true && l.decision === 'deny')
  assert.ok(line !== undefined, 'the refusal is logged')
  assert.equal(line.permission, 'read_project')
  assert.ok(!JSON.stringify(g.logs).includes('glpat-lib-reader'), 'the token is never logged')
})

test('Group boundary: a selected group reaches its subgroups\' projects; another group is refused', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const sub = await postGraphql(g.url, { query: 'query($p: ID!) { project(fullPath: $p) { id } }', variables: { p: 'acme/platform/app' } }, pat('glpat-acme-group'))
  assert.deepEqual(sub.body, { data: { upstream: true } }, 'a project two levels under the selected group, named by a variable')
  const group = await postGraphql(g.url, { query: '{ group(fullPath: "acme") { id } }' }, pat('glpat-acme-group'))
  assert.deepEqual(group.body, { data: { upstream: true } })
  const other = await postGraphql(g.url, { query: '{ group(fullPath: "other") { id } }' }, pat('glpat-acme-group'))
  assert.equal(other.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.equal(other.body.errors[0].extensions.boundary, 'Group')
  // variables as a JSON string, as GitLab accepts them
  const asString = await postGraphql(g.url, { query: 'query($p: ID!) { project(fullPath: $p) { id } }', variables: JSON.stringify({ p: 'other/tools' }) }, pat('glpat-acme-group'))
  assert.equal(asString.body.errors[0].extensions.permission, 'read_project')
  assert.equal(g.upstream.length, 2)
})

test('Instance and User boundaries: granted by instance and user scopes only', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const runners = await postGraphql(g.url, { query: '{ runners { nodes { id } } }' }, pat('glpat-instance'))
  assert.deepEqual(runners.body, { data: { upstream: true } })
  const org = await postGraphql(g.url, { query: 'mutation { organizationCreate(input: { name: "o", path: "o" }) { errors } }' }, pat('glpat-instance'))
  assert.deepEqual(org.body, { data: { upstream: true } })
  const prefs = await postGraphql(g.url, { query: 'mutation { userPreferencesUpdate(input: { issuesSort: CREATED_ASC }) { errors } }' }, pat('glpat-user'))
  assert.deepEqual(prefs.body, { data: { upstream: true } })
  // The user token holds no instance scope, the instance token no user scope.
  const noInstance = await postGraphql(g.url, { query: '{ runners { nodes { id } } }' }, pat('glpat-user'))
  assert.equal(noInstance.body.errors[0].extensions.permission, 'read_runner')
  assert.equal(noInstance.body.errors[0].extensions.boundary, 'Instance')
  const noUser = await postGraphql(g.url, { query: 'mutation { userPreferencesUpdate(input: {}) { errors } }' }, pat('glpat-instance'))
  assert.equal(noUser.body.errors[0].extensions.permission, 'update_preference')
  assert.equal(noUser.body.errors[0].extensions.boundary, 'User')
  assert.equal(g.upstream.length, 3)
  const { samples } = await scrape(g.healthUrl)
  assert.equal(total(samples, 'job_token_gate_graphql_decisions_total', { decision: 'allow' }), 3)
  assert.equal(total(samples, 'job_token_gate_graphql_decisions_total', { decision: 'deny', permission: 'read_runner' }), 1)
  assert.equal(total(samples, 'job_token_gate_graphql_decisions_total', { decision: 'deny', permission: 'update_preference', reason: 'GRAPHQL_PERMISSION_MISSING' }), 1)
})

test('a root field or mutation the catalog does not list is refused, and the message says the schema is not used', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const echo = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id } echo(text: "x") }' }, pat('glpat-lib-reader'))
  assert.equal(echo.body.errors[0].extensions.code, 'GRAPHQL_NOT_IN_CATALOG')
  assert.equal(echo.body.errors[0].extensions.refused, 'field Query.echo')
  assert.match(echo.body.errors[0].message, /GATE_GRAPHQL_SCHEMA is not set/)
  const mutation = await postGraphql(g.url, { query: 'mutation { echoCreate(input: {}) { errors } }' }, pat('glpat-lib-reader'))
  assert.equal(mutation.body.errors[0].extensions.refused, 'mutation echoCreate')
  assert.equal(g.upstream.length, 0)
  const { samples } = await scrape(g.healthUrl)
  assert.equal(total(samples, 'job_token_gate_graphql_decisions_total', { decision: 'deny', permission: 'not_in_catalog' }), 2)
})

test('no token, and a legacy token, pass byte for byte without a permission lookup', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const body = '{"query":"{ echo(text: \\"x\\") }",  "variables": null }'
  const none = await postGraphql(g.url, body)
  assert.deepEqual(none.body, { data: { upstream: true } })
  assert.equal(g.tokenCalls(), 0, 'no token: nothing asked')
  const legacy = await postGraphql(g.url, body, pat('glpat-legacy'))
  assert.deepEqual(legacy.body, { data: { upstream: true } })
  assert.equal(g.tokenCalls(), 1, 'a token: its permissions are asked once')
  await postGraphql(g.url, body, { authorization: 'Bearer glpat-legacy' })
  assert.equal(g.tokenCalls(), 1, 'cached by token hash')
  const sha = createHash('sha256').update(body).digest('hex')
  assert.equal(g.upstream.length, 3)
  for (const call of g.upstream) assert.equal(call.sha256, sha, 'the exact bytes')
  assert.equal(g.upstream[1]!.headers['private-token'], 'glpat-legacy', 'the credential goes on')
})

test('GitLab down while the token\'s permissions are read: 503, nothing forwarded; back up: served', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  g.tokenLookupFails = 503
  const down = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id } }' }, pat('glpat-lib-reader'))
  assert.equal(down.status, 503)
  assert.equal(down.body.code, 'GRAPHQL_TOKEN_LOOKUP_UNAVAILABLE')
  assert.equal(g.upstream.length, 0)
  g.tokenLookupFails = undefined
  const up = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id } }' }, pat('glpat-lib-reader'))
  assert.deepEqual(up.body, { data: { upstream: true } }, 'the failure was not cached')
  const { samples } = await scrape(g.healthUrl)
  assert.equal(total(samples, 'job_token_gate_graphql_decisions_total', { decision: 'error', reason: 'GRAPHQL_TOKEN_LOOKUP_UNAVAILABLE' }), 1)
})

test('two different tokens are refused as ambiguous; the same token twice is one', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const two = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id } }', private_token: 'glpat-legacy' }, pat('glpat-lib-reader'))
  assert.equal(two.status, 401)
  assert.equal(two.body.code, 'CREDENTIAL_AMBIGUOUS')
  const inBody = await postGraphql(g.url, { query: '{ project(fullPath: "other/tools") { id } }', access_token: 'glpat-lib-reader' })
  assert.equal(inBody.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING', 'a token in a body parameter is found as GitLab finds it')
  const same = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id } }', private_token: 'glpat-lib-reader' }, pat('glpat-lib-reader'))
  assert.deepEqual(same.body, { data: { upstream: true } })
})

test('shadow mode: a refusal is logged and counted as would_deny, and the request forwarded', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, env: { GATE_MODE: 'shadow' } })
  const answer = await postGraphql(g.url, { query: '{ project(fullPath: "other/tools") { id } }' }, pat('glpat-lib-reader'))
  assert.deepEqual(answer.body, { data: { upstream: true } })
  assert.equal(g.upstream.length, 1)
  const line = g.logs.find(l => l.graphql === true)
  assert.equal(line?.decision, 'would_deny')
  assert.equal(line?.permission, 'read_project')
  const { samples } = await scrape(g.healthUrl)
  assert.equal(total(samples, 'job_token_gate_graphql_decisions_total', { decision: 'would_deny', permission: 'read_project' }), 1)
  assert.equal(total(samples, 'job_token_gate_graphql_decisions_total', { decision: 'deny' }), 0)
})
