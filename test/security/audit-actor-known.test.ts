// Every change of the configuration API is audited with its author: the user GitLab names for
// the caller's token (GET /api/v4/user). A Maintainer's fine-grained token with the allowlist's
// permissions but none to read its own user gets 403 there from GitLab, and the gate then wrote
// the change with actor `{"type": "user", "id": 0}` and an entry `added_by: null`: a change in
// the audit trail, over REST or GraphQL, that named nobody. A write whose author GitLab does not
// name is refused now (403 ADMIN_ACTOR_UNKNOWN), nothing written; reads still answer.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startGraphqlGate, type FakeToken, type GraphqlGate } from '../helpers/graphql-gate.ts'

const PERMISSIONS = ['read_project', 'create_job_token_scope_allowlist', 'delete_job_token_scope_allowlist', 'update_job_token_scope']
const NAMELESS = 'glpat-fg-allowlist-only'
const NAMED = 'glpat-fg-allowlist-and-user'
const ADMIN = 'gate-operator-secret-token'
const TOKENS: Record<string, FakeToken> = {
  [NAMELESS]: { userId: 41, scopes: [{ access: 'selected_memberships', permissions: PERMISSIONS, project_id: 200 }] },
  [NAMED]: { userId: 42, scopes: [{ access: 'selected_memberships', permissions: PERMISSIONS, project_id: 200 }] }
}
const USERS = {
  // GitLab refuses this token its own user: no permission to read it.
  [NAMELESS]: { id: 41, username: 'mia', access: { 200: 40, 100: 20 }, userHidden: true },
  [NAMED]: { id: 42, username: 'olga', access: { 200: 40, 100: 20 } }
}

async function call (g: GraphqlGate, method: string, path: string, token: string, body?: unknown): Promise<{ status: number, body: any }> {
  const res = await fetch(`${g.url}${path}`, {
    method,
    headers: { 'private-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}

const events = async (g: GraphqlGate): Promise<any[]> => (await call(g, 'GET', '/api/v4/projects/200/job_token_permissions/audit_events?per_page=100', ADMIN)).body

test('audit: a change whose author GitLab does not name is refused, over REST and GraphQL', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS, env: { GATE_ADMIN_TOKEN: ADMIN } })
  const before = await events(g)

  const rest = await call(g, 'POST', '/api/v4/projects/200/job_token_scope/allowlist', NAMELESS, { target_project_id: 100 })
  assert.equal(rest.status, 403, JSON.stringify(rest.body))
  assert.equal(rest.body.code, 'ADMIN_ACTOR_UNKNOWN')
  assert.equal(typeof rest.body.message, 'string')
  const patch = await call(g, 'PATCH', '/api/v4/projects/200/job_token_permissions', NAMELESS, { package_registry: { maven: { write: 'maintainer' } } })
  assert.equal(patch.status, 403, JSON.stringify(patch.body))
  assert.equal(patch.body.code, 'ADMIN_ACTOR_UNKNOWN')
  const mutation = await call(g, 'POST', '/api/graphql', NAMELESS, {
    query: 'mutation { ciJobTokenScopeAddGroupOrProject(input: { projectPath: "acme/lib", targetPath: "acme/platform/app" }) { errors } }'
  })
  assert.equal(mutation.status, 200)
  assert.equal(mutation.body.data?.ciJobTokenScopeAddGroupOrProject ?? null, null, JSON.stringify(mutation.body))
  assert.equal(mutation.body.errors?.[0]?.extensions?.code, 'ADMIN_ACTOR_UNKNOWN', JSON.stringify(mutation.body))
  assert.deepEqual(await events(g), before, 'nothing written, no event naming nobody')
  assert.equal(g.logs.some(l => l.audit === true), false)

  // Reading needs no author.
  assert.equal((await call(g, 'GET', '/api/v4/projects/200/job_token_scope/allowlist', NAMELESS)).status, 200)

  // A token GitLab names writes, and the event names its user.
  const named = await call(g, 'POST', '/api/v4/projects/200/job_token_scope/allowlist', NAMED, { target_project_id: 100 })
  assert.equal(named.status, 201, JSON.stringify(named.body))
  const [latest] = await events(g)
  assert.deepEqual(latest.actor, { type: 'user', id: 42, username: 'olga' })
})
