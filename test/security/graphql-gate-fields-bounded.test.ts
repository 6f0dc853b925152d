// Finding: the gate answers its own GraphQL fields (`project { jobTokenPermissions }`,
// `updateJobTokenPermissions`, the `ciJobTokenScope*` allowlist mutations) in GitLab's place, and
// ran any number of them from one document. Each asks GitLab (the caller's role at the project,
// a target, the path again at a write), and graphql-js resolves a query's root fields at once:
// one 1 MiB request of aliased `project(fullPath: ...)` fields, from any signed-in user, made
// thousands of concurrent GitLab API calls (2,000 aliases: 2,000 `GET /projects/:path`), and
// aliased mutations as many writes, audit events and lookups one after another. GitLab refuses
// such a query before it runs anything: its complexity (each field at least 1) is over 250 for
// a signed-in user, 300 for an administrator (app/graphql/gitlab_schema.rb).
//
// Now a document whose gate fields count over GitLab's highest limit is refused, 400
// GRAPHQL_TOO_COMPLEX, before GitLab is asked anything or anything runs.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADMIN, USERS, adminGate } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

const json = { 'content-type': 'application/json' }
const gql = (query: string): string => JSON.stringify({ query })

test('graphql: a document of too many gate fields is refused before GitLab is asked', async t => {
  const g = await adminGate(t)
  // 110 aliases of 3 fields: over the complexity bound, within GitLab's 10,000 characters.
  const reads = '{ ' + Array.from({ length: 110 }, (_, i) => `p${i}: project(fullPath: "acme/nope${i}") { jobTokenPermissions { jobTokenPoliciesEnabled } }`).join(' ') + ' }'
  const res = await send(g.url, 'POST', '/api/graphql', { 'private-token': USERS.maintainer, ...json }, gql(reads))
  assert.equal(res.status, 400, res.text.slice(0, 300))
  assert.equal(res.json().code, 'GRAPHQL_TOO_COMPLEX')
  assert.match(res.json().message, /^400 Bad request - Query has complexity of more than 300, which exceeds max complexity of 300/)
  assert.equal(g.gitlab.calls.project, 0, 'no project was looked up')

  // Mutations too: nothing written, nothing audited.
  const version = await g.store.version(200)
  const writes = 'mutation($in: CiJobTokenScopeAddProjectInput!) { ' + Array.from({ length: 160 }, (_, i) => `m${i}: ciJobTokenScopeAddProject(input: $in) { errors }`).join(' ') + ' }'
  const mutation = await send(g.url, 'POST', '/api/graphql', { 'private-token': ADMIN, ...json }, JSON.stringify({ query: writes, variables: { in: { projectPath: 'acme/lib', targetProjectPath: 'other/tools' } } }))
  assert.equal(mutation.status, 400, mutation.text.slice(0, 300))
  assert.equal(mutation.json().code, 'GRAPHQL_TOO_COMPLEX')
  assert.equal(await g.store.version(200), version, 'nothing written')
  assert.equal((await g.store.readAudit(200, { offset: 0, limit: 10 })).total, 0, 'nothing audited')

  // A fragment counts each time it is spread.
  const spread = '{ ' + Array.from({ length: 160 }, (_, i) => `p${i}: project(fullPath: "acme/nope${i}") { ...F }`).join(' ') + ' } fragment F on Project { jobTokenPermissions { jobTokenPoliciesEnabled } }'
  const nested = await send(g.url, 'POST', '/api/graphql', { 'private-token': USERS.maintainer, ...json }, gql(spread))
  assert.equal(nested.status, 400, nested.text.slice(0, 300))
  assert.equal(nested.json().code, 'GRAPHQL_TOO_COMPLEX')
  assert.equal(g.gitlab.calls.project, 0, 'no project was looked up')
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})

test('graphql: a document within GitLab\'s limit still runs', async t => {
  const g = await adminGate(t)
  const reads = '{ ' + Array.from({ length: 30 }, (_, i) => `p${i}: project(fullPath: "acme/lib") { jobTokenPermissions { jobTokenPoliciesEnabled } }`).join(' ') + ' }'
  const res = await send(g.url, 'POST', '/api/graphql', { 'private-token': USERS.maintainer, ...json }, gql(reads))
  assert.equal(res.status, 200, res.text.slice(0, 300))
  assert.equal(res.json().errors, undefined, res.text.slice(0, 300))
  assert.equal(Object.keys(res.json().data).length, 30)
})
