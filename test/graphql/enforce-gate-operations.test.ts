// The gate's own GraphQL operations (the allowlist mutations it answers from its store, its
// `jobTokenPermissions` fields) called with a fine-grained personal access token: each needs its
// catalog permission at the project it names, checked before the service runs.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

// Maintainers of acme/lib (200) who see acme/platform/app (100).
const FULL = 'glpat-fg-allowlist-admin'
const ADD_ONLY = 'glpat-fg-allowlist-adder'
const OTHER_PROJECT = 'glpat-fg-elsewhere'
const LEGACY = 'glpat-legacy-maintainer'
const TOKENS: Record<string, FakeToken> = {
  [FULL]: { userId: 41, scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'create_job_token_scope_allowlist', 'delete_job_token_scope_allowlist', 'update_job_token_scope'], project_id: 200 }] },
  [ADD_ONLY]: { userId: 42, scopes: [{ access: 'selected_memberships', permissions: ['create_job_token_scope_allowlist'], project_id: 200 }] },
  // Every permission, but on another project.
  [OTHER_PROJECT]: { userId: 43, scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'create_job_token_scope_allowlist', 'delete_job_token_scope_allowlist', 'update_job_token_scope'], project_id: 300 }] }
}
const USERS = Object.fromEntries([FULL, ADD_ONLY, OTHER_PROJECT, LEGACY].map((token, i) => [token, { id: 41 + i, username: `u${i}`, access: { 200: 40, 100: 20 } }]))
const pat = (token: string): Record<string, string> => ({ 'private-token': token })

const ADD = 'mutation($in: CiJobTokenScopeAddProjectInput!) { ciJobTokenScopeAddProject(input: $in) { errors ciJobTokenScope { inboundAllowlistCount } } }'
const REMOVE = 'mutation { ciJobTokenScopeRemoveProject(input: { projectPath: "acme/lib", targetProjectPath: "acme/platform/app" }) { errors } }'
const UPDATE = 'mutation { updateJobTokenPermissions(input: { projectPath: "acme/lib", packageRegistry: [{ format: "maven", write: MAINTAINER }] }) { errors } }'
const READ = '{ project(fullPath: "acme/lib") { jobTokenPermissions { jobTokenPoliciesEnabled } } }'

test('allowlist mutations: create and delete need their permission at the project; refused before the store changes', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS })
  const entries = async (): Promise<number> => (await g.gate.grants.get(200))?.entries.length ?? 0
  const vars = { in: { projectPath: 'acme/lib', targetProjectPath: 'acme/platform/app' } }

  const elsewhere = await postGraphql(g.url, { query: ADD, variables: vars }, pat(OTHER_PROJECT))
  assert.equal(elsewhere.status, 200)
  assert.equal(elsewhere.body.data, null)
  assert.equal(elsewhere.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.equal(elsewhere.body.errors[0].extensions.permission, 'create_job_token_scope_allowlist')
  assert.equal(elsewhere.body.errors[0].extensions.target, 'project acme/lib', 'the project named in the input variable')
  assert.equal(await entries(), 0, 'nothing written')

  const added = await postGraphql(g.url, { query: ADD, variables: vars }, pat(ADD_ONLY))
  assert.deepEqual(added.body.data.ciJobTokenScopeAddProject.errors, [])
  assert.equal(await entries(), 1)

  const removeRefused = await postGraphql(g.url, { query: REMOVE }, pat(ADD_ONLY))
  assert.equal(removeRefused.body.errors[0].extensions.permission, 'delete_job_token_scope_allowlist')
  assert.equal(await entries(), 1, 'still there')
  const removed = await postGraphql(g.url, { query: REMOVE }, pat(FULL))
  assert.deepEqual(removed.body.data.ciJobTokenScopeRemoveProject.errors, [])
  assert.equal(await entries(), 0)
  assert.equal(g.upstream.length, 0, 'the gate\'s operations never reach GitLab')
})

test('the gate\'s own fields: updateJobTokenPermissions needs update_job_token_scope, reading them read_project', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS })
  const refused = await postGraphql(g.url, { query: UPDATE }, pat(ADD_ONLY))
  assert.equal(refused.body.errors[0].extensions.permission, 'update_job_token_scope')
  assert.equal(refused.body.errors[0].extensions.boundary, 'Project')
  assert.equal((await g.gate.grants.get(200))?.packageRules, undefined, 'nothing written')
  const updated = await postGraphql(g.url, { query: UPDATE }, pat(FULL))
  assert.deepEqual(updated.body.data.updateJobTokenPermissions.errors, [])
  assert.deepEqual((await g.gate.grants.get(200))?.packageRules, { maven: { write: 'maintainer' } })

  const readRefused = await postGraphql(g.url, { query: READ }, pat(ADD_ONLY))
  assert.equal(readRefused.body.errors[0].extensions.permission, 'read_project')
  const read = await postGraphql(g.url, { query: READ }, pat(FULL))
  assert.equal(read.body.data.project.jobTokenPermissions.jobTokenPoliciesEnabled, null)
})

test('a legacy token keeps the Maintainer check alone, as before', async (t) => {
  const g = await startGraphqlGate(t, { tokens: { ...TOKENS, [LEGACY]: { userId: 44 } }, users: USERS })
  const updated = await postGraphql(g.url, { query: UPDATE }, pat(LEGACY))
  assert.deepEqual(updated.body.data.updateJobTokenPermissions.errors, [])
})

test('shadow mode does not open the gate\'s own operations: a refusal still refuses and nothing is written', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS, env: { GATE_MODE: 'shadow' } })
  const vars = { in: { projectPath: 'acme/lib', targetProjectPath: 'acme/platform/app' } }
  const refused = await postGraphql(g.url, { query: ADD, variables: vars }, pat(OTHER_PROJECT))
  assert.equal(refused.body.data, null)
  assert.equal(refused.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.equal((await g.gate.grants.get(200))?.entries.length ?? 0, 0, 'nothing written')
  assert.equal(g.upstream.length, 0)
})
