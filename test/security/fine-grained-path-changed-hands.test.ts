// A fine-grained token's permission on the configuration API is asked at the project of the
// request's path, found by the target lookup (the service token, cached 60 s for every caller),
// while the Maintainer check and the write found the project with the caller's own token. A path
// that changed hands in between (acme/lib moved away, other/tools renamed to acme/lib) let a token
// whose permissions reach acme/lib (200) only add an allowlist entry to other/tools (300), over
// REST and GraphQL, where GitLab refuses the token there. The permission is asked again at the
// project the change goes to, by id.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { apiCall, postGraphql, startGraphqlGate, type FakeToken, type GraphqlGate } from '../helpers/graphql-gate.ts'

const PERMISSIONS = ['read_project', 'create_job_token_scope_allowlist', 'delete_job_token_scope_allowlist', 'update_job_token_scope']
// Both reach acme/lib (200) only; their holders' roles are below.
const LIB_ONLY = 'glpat-fg-acme-lib-only'
const NEIGHBOUR = 'glpat-fg-someone-on-acme-lib'
const TOKENS: Record<string, FakeToken> = {
  [LIB_ONLY]: { userId: 41, scopes: [{ access: 'selected_memberships', permissions: PERMISSIONS, project_id: 200 }] },
  [NEIGHBOUR]: { userId: 42, scopes: [{ access: 'selected_memberships', permissions: PERMISSIONS, project_id: 200 }] }
}
// LIB_ONLY's holder is a Maintainer of both acme/lib and other/tools: only the token's scope refuses.
const USERS = {
  [LIB_ONLY]: { id: 41, username: 'maintainer', access: { 100: 30, 200: 40, 300: 40 } },
  [NEIGHBOUR]: { id: 42, username: 'neighbour', access: { 200: 40 } }
}


/** Anyone's fine-grained request naming acme/lib keeps its lookup; then the paths change hands in GitLab. */
async function pathChangesHands (g: GraphqlGate): Promise<void> {
  const read = await apiCall(g, 'GET', '/projects/acme%2Flib/job_token_scope', NEIGHBOUR)
  assert.equal(read.status, 200, JSON.stringify(read.body))
  const lib = g.gitlab.projects.get(200)!
  const tools = g.gitlab.projects.get(300)!
  g.gitlab.projects.set(200, { ...lib, pathWithNamespace: 'acme/lib-old' })
  g.gitlab.projects.set(300, { ...tools, pathWithNamespace: 'acme/lib' })
}

test('REST: a path that changed hands reaches no project the token holds no permission at', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS })
  await pathChangesHands(g)

  const added = await apiCall(g, 'POST', '/projects/acme%2Flib/job_token_scope/allowlist', LIB_ONLY, { target_project_id: 100 })
  assert.equal(added.status, 403, JSON.stringify(added.body))
  assert.equal(added.body.code, 'ADMIN_TOKEN_PERMISSION_MISSING')
  assert.match(added.body.message, /\[Job Token Scope Allowlist: Create\]/)
  const read = await apiCall(g, 'GET', '/projects/acme%2Flib/job_token_scope/allowlist', LIB_ONLY)
  assert.equal(read.status, 403, 'nor is other/tools\' allowlist read with it')
  assert.equal(await g.gate.grants.get(300), null, 'nothing written to other/tools')
  assert.equal(await g.gate.grants.get(200), null, 'nor to acme/lib, which the path no longer names')

  // acme/lib under its new path is still the token's.
  const own = await apiCall(g, 'POST', '/projects/acme%2Flib-old/job_token_scope/allowlist', LIB_ONLY, { target_project_id: 100 })
  assert.equal(own.status, 201, JSON.stringify(own.body))
  assert.deepEqual((await g.gate.grants.get(200))?.entries.map(e => e.targetId), [100])
})

test('GraphQL: the gate\'s mutations act on no project the token holds no permission at', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS })
  await pathChangesHands(g)

  const added = await postGraphql(g.url, { query: 'mutation { ciJobTokenScopeAddProject(input: {projectPath: "acme/lib", targetProjectPath: "acme/platform/app"}) { errors } }' }, { 'private-token': LIB_ONLY })
  assert.equal(added.status, 200, added.text)
  assert.equal(added.body.data?.ciJobTokenScopeAddProject ?? null, null, added.text)
  assert.equal(added.body.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', added.text)
  const rules = await postGraphql(g.url, { query: 'mutation { updateJobTokenPermissions(input: {projectPath: "acme/lib", packageRegistry: [{format: "maven", write: MAINTAINER}]}) { errors } }' }, { 'private-token': LIB_ONLY })
  assert.equal(rules.body.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', rules.text)
  assert.equal(await g.gate.grants.get(300), null, 'nothing written to other/tools')

  const own = await postGraphql(g.url, { query: 'mutation { ciJobTokenScopeAddProject(input: {projectPath: "acme/lib-old", targetProjectPath: "acme/platform/app"}) { errors } }' }, { 'private-token': LIB_ONLY })
  assert.deepEqual(own.body, { data: { ciJobTokenScopeAddProject: { errors: [] } } }, own.text)
  assert.deepEqual((await g.gate.grants.get(200))?.entries.map(e => e.targetId), [100])
  assert.equal(g.upstream.length, 0, 'nothing forwarded to GitLab')
})
