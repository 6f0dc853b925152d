// The configuration API's REST endpoints called with a fine-grained personal access token: each
// endpoint needs its permission at the project of the path (src/admin/rest.ts tokenPermissionOf),
// decided with the same token scopes and project lookups as /api/graphql, before the Maintainer
// check and before anything is written. A Maintainer's token without "Job Token Scope Allowlist:
// Create" adds no allowlist entry, as GitLab would refuse it the same change.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { apiCall, startGraphqlGate, type ApiAnswer, type FakeToken, type GraphqlGate } from '../helpers/graphql-gate.ts'
import { scrape, total } from '../helpers/metrics.ts'

const PERMISSIONS = ['read_project', 'create_job_token_scope_allowlist', 'delete_job_token_scope_allowlist', 'update_job_token_scope'] as const
type Permission = typeof PERMISSIONS[number]

// acme/lib (200) is in group acme (10); acme/platform/app (100) in acme/platform (11) under acme.
const ALL = 'glpat-fg-all-on-lib'
const lacking = (p: Permission): string => `glpat-fg-lib-without-${p}`
const GROUP_ACME = 'glpat-fg-group-acme'
const GROUP_OTHER = 'glpat-fg-group-other'
const LEGACY = 'glpat-legacy-maintainer'
const FRESH = 'glpat-fg-never-asked'
const HIDDEN = 'glpat-fg-hidden'
const ADMIN = 'gate-operator-secret-token'

const TOKENS: Record<string, FakeToken> = {
  [ALL]: { userId: 41, scopes: [{ access: 'selected_memberships', permissions: [...PERMISSIONS], project_id: 200 }] },
  ...Object.fromEntries(PERMISSIONS.map((p, i) => [lacking(p), { userId: 50 + i, scopes: [{ access: 'selected_memberships', permissions: PERMISSIONS.filter(q => q !== p), project_id: 200 }] }])),
  [GROUP_ACME]: { userId: 42, scopes: [{ access: 'selected_memberships', permissions: [...PERMISSIONS], group_id: 10 }] },
  [GROUP_OTHER]: { userId: 43, scopes: [{ access: 'selected_memberships', permissions: [...PERMISSIONS], group_id: 20 }] },
  [FRESH]: { userId: 45, scopes: [{ access: 'selected_memberships', permissions: [...PERMISSIONS], project_id: 200 }] },
  [HIDDEN]: { userId: 46, scopes: [{ access: 'selected_memberships', permissions: [...PERMISSIONS], project_id: 200 }] },
  [LEGACY]: { userId: 44 }
}
// Every token's holder is a Maintainer of acme/lib: only the token's permissions can refuse.
const USERS = Object.fromEntries(Object.keys(TOKENS).map((token, i) => [token, { id: 41 + i, username: `u${i}`, access: { 200: 40 } }]))


/** The project's stored settings and audit trail, to show a refusal changed nothing. */
async function state (g: GraphqlGate): Promise<string> {
  const audit = await apiCall(g, 'GET', '/projects/200/job_token_permissions/audit_events?per_page=100', ADMIN)
  return JSON.stringify([await g.gate.grants.get(200), audit.body])
}

function assertMissing (answer: ApiAnswer, label: string, target = 'project 200'): void {
  assert.equal(answer.status, 403, JSON.stringify(answer.body))
  assert.equal(answer.body.code, 'ADMIN_TOKEN_PERMISSION_MISSING')
  assert.equal(answer.body.error, 'insufficient_granular_scope', 'GitLab\'s REST error for a missing fine-grained permission')
  assert.equal(answer.body.message, answer.body.error_description)
  assert.match(answer.body.message, new RegExp(`^Access denied: This operation requires a fine-grained personal access token with the following project permissions: \\[${label}\\]\\.`))
  assert.ok(answer.body.message.endsWith(` Target: ${target}.`), answer.body.message)
  assert.ok(!JSON.stringify(answer.body).includes('glpat-'), 'no token in the answer')
}

const LABELS: Record<Permission, string> = {
  read_project: 'Project: Read',
  create_job_token_scope_allowlist: 'Job Token Scope Allowlist: Create',
  delete_job_token_scope_allowlist: 'Job Token Scope Allowlist: Delete',
  update_job_token_scope: 'Job Token Scope: Update'
}

// In order: each row's allowed call prepares the next (an entry is added before it is changed).
const ENDPOINTS: ReadonlyArray<{ method: string, path: string, body?: unknown, permission: Permission, status: number }> = [
  { method: 'GET', path: '/projects/200/job_token_scope', permission: 'read_project', status: 200 },
  { method: 'PATCH', path: '/projects/200/job_token_scope', body: { enabled: true }, permission: 'update_job_token_scope', status: 204 },
  { method: 'GET', path: '/projects/200/job_token_scope/usage', permission: 'read_project', status: 200 },
  { method: 'GET', path: '/projects/200/job_token_scope/allowlist', permission: 'read_project', status: 200 },
  { method: 'POST', path: '/projects/200/job_token_scope/allowlist', body: { target_project_id: 100 }, permission: 'create_job_token_scope_allowlist', status: 201 },
  { method: 'PATCH', path: '/projects/200/job_token_scope/allowlist/100', body: { default_permissions: false, job_token_policies: ['read_packages'] }, permission: 'update_job_token_scope', status: 200 },
  { method: 'DELETE', path: '/projects/200/job_token_scope/allowlist/100', permission: 'delete_job_token_scope_allowlist', status: 204 },
  { method: 'GET', path: '/projects/200/job_token_scope/groups_allowlist', permission: 'read_project', status: 200 },
  { method: 'POST', path: '/projects/200/job_token_scope/groups_allowlist', body: { target_group_id: 20 }, permission: 'create_job_token_scope_allowlist', status: 201 },
  { method: 'PATCH', path: '/projects/200/job_token_scope/groups_allowlist/20', body: { default_permissions: false, job_token_policies: ['read_packages'] }, permission: 'update_job_token_scope', status: 200 },
  { method: 'DELETE', path: '/projects/200/job_token_scope/groups_allowlist/20', permission: 'delete_job_token_scope_allowlist', status: 204 },
  { method: 'GET', path: '/projects/200/job_token_permissions', permission: 'read_project', status: 200 },
  { method: 'PATCH', path: '/projects/200/job_token_permissions', body: { package_registry: { maven: { write: 'maintainer' } } }, permission: 'update_job_token_scope', status: 200 },
  { method: 'GET', path: '/projects/200/job_token_permissions/audit_events', permission: 'read_project', status: 200 }
]

test('each REST endpoint needs its permission at the project: refused without it (nothing changed), answered with it', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS, env: { GATE_ADMIN_TOKEN: ADMIN } })
  for (const row of ENDPOINTS) {
    const name = `${row.method} ${row.path}`
    const before = await state(g)
    const refused = await apiCall(g, row.method, row.path, lacking(row.permission), row.body)
    assertMissing(refused, LABELS[row.permission])
    assert.equal(await state(g), before, `${name}: nothing written`)
    const answered = await apiCall(g, row.method, row.path, ALL, row.body)
    assert.equal(answered.status, row.status, `${name}: ${JSON.stringify(answered.body)}`)
  }
  const log = g.logs.find(l => l.reason === 'ADMIN_TOKEN_PERMISSION_MISSING' && l.permission === 'create_job_token_scope_allowlist')
  assert.ok(log !== undefined, 'the refusal is logged with its reason and permission')
  assert.equal(log.msg, 'configuration API refused')
  assert.ok(!g.logs.some(l => JSON.stringify(l).includes('glpat-')), 'no token in the logs')
  assert.equal(g.upstream.length, 0, 'nothing forwarded to GitLab')
  const { samples } = await scrape(g.healthUrl)
  assert.equal(total(samples, 'job_token_gate_admin_refusals_total', { code: 'ADMIN_TOKEN_PERMISSION_MISSING' }), ENDPOINTS.length, 'each refusal counted by its code')
})

test('the Maintainer check is not asked, and the body not read, for a token refused its permission', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS })
  const before = g.gitlab.calls.project
  const refused = await apiCall(g, 'POST', '/projects/200/job_token_scope/allowlist', lacking('create_job_token_scope_allowlist'), { target_project_id: 100 })
  assertMissing(refused, LABELS.create_job_token_scope_allowlist)
  assert.equal(g.gitlab.calls.project, before, 'no role check with the user\'s token: a token without the permission anywhere needs no lookup either')
  assert.equal((await g.gate.grants.get(200))?.entries.length ?? 0, 0)
})

test('a selected group reaches the projects under it, another group does not', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS })
  // By full path, as GitLab takes :id too.
  const refused = await apiCall(g, 'POST', '/projects/acme%2Flib/job_token_scope/allowlist', GROUP_OTHER, { target_project_id: 100 })
  // The group's scope holds the permission, so the project was looked up (with the service token).
  assertMissing(refused, LABELS.create_job_token_scope_allowlist, 'project acme/lib')
  assert.equal((await g.gate.grants.get(200))?.entries.length ?? 0, 0, 'nothing written')
  const added = await apiCall(g, 'POST', '/projects/acme%2Flib/job_token_scope/allowlist', GROUP_ACME, { target_project_id: 100 })
  assert.equal(added.status, 201, JSON.stringify(added.body))
  assert.deepEqual((await g.gate.grants.get(200))?.entries.map(e => e.targetId), [100])
})

test('legacy tokens and the operator token are decided as before', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS, env: { GATE_ADMIN_TOKEN: ADMIN } })
  const legacy = await apiCall(g, 'POST', '/projects/200/job_token_scope/allowlist', LEGACY, { target_project_id: 100 })
  assert.equal(legacy.status, 201, JSON.stringify(legacy.body))
  const asked = g.tokenCalls()
  const operator = await apiCall(g, 'POST', '/projects/200/job_token_scope/groups_allowlist', ADMIN, { target_group_id: 20 })
  assert.equal(operator.status, 201, JSON.stringify(operator.body))
  assert.equal(g.tokenCalls(), asked, 'the operator token is never sent to GitLab')
  assert.equal((await g.gate.grants.get(200))?.entries.length, 2)
})

test('GitLab down: 503, fail closed; a token GitLab will not describe: 403 GRAPHQL_TOKEN_SCOPES_HIDDEN', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS })
  g.tokenLookupFails = 503
  const down = await apiCall(g, 'POST', '/projects/200/job_token_scope/allowlist', FRESH, { target_project_id: 100 })
  assert.equal(down.status, 503)
  assert.equal(down.body.code, 'GRAPHQL_TOKEN_LOOKUP_UNAVAILABLE')
  g.tokenLookupFails = 403
  const hidden = await apiCall(g, 'POST', '/projects/200/job_token_scope/allowlist', HIDDEN, { target_project_id: 100 })
  assert.equal(hidden.status, 403)
  assert.equal(hidden.body.code, 'GRAPHQL_TOKEN_SCOPES_HIDDEN')
  assert.equal((await g.gate.grants.get(200))?.entries.length ?? 0, 0, 'nothing written')
  g.tokenLookupFails = undefined
  const added = await apiCall(g, 'POST', '/projects/200/job_token_scope/allowlist', FRESH, { target_project_id: 100 })
  assert.equal(added.status, 201, 'a refusal or an outage is not cached')
})
