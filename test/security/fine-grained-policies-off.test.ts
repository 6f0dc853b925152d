// Older GitLab (feature flag add_policies_to_ci_job_token off; job_token_policies_enabled false on
// the root namespace, 17.11 to 18.4) lets a fine-grained entry act as default permissions. The
// gate enforced the policies anyway. GATE_FINE_GRAINED_POLICIES=off says so for the instance;
// PUT /groups/:id/job_token_policies for a root namespace (every project under it); the
// `job_token_policies_enabled` of /projects/:id/job_token_permissions for one project, which wins
// over its root namespace. Each change is audited.
// acme/lib (200) lets acme/platform/app (100, TOKENS.app) read packages only.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from '../../src/config.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { ADMIN, USERS, adminGate } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { loadCatalog } from '../../src/catalog/load.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { createInstanceSettings, type ProjectGrants } from '../../src/grants/model.ts'
import { decide, NAMESPACE_UNREAD, type NamespacePolicies } from '../../src/policy/decide.ts'

const op = { 'private-token': ADMIN }
const json = { 'content-type': 'application/json' }
const PERMISSIONS = '/api/v4/projects/200/job_token_permissions'
// Creating a deployment needs admin_deployments and admin_environments: not held.
const DEPLOY = '/api/v4/projects/200/deployments'

test('the override set through the configuration API: the fine-grained entry then acts as default permissions', async (t) => {
  const g = await adminGate(t)
  const before = await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })
  assert.equal(before.status, 403)
  assert.equal(before.json().code, 'MISSING_POLICIES')
  assert.equal((await send(g.url, 'GET', PERMISSIONS, op)).json().job_token_policies_enabled, null, 'unset: the instance decides')

  const set = await send(g.url, 'PATCH', PERMISSIONS, { 'private-token': USERS.maintainer, ...json, 'x-request-id': 'turn-off' }, JSON.stringify({ job_token_policies_enabled: false }))
  assert.equal(set.status, 200, set.text)
  assert.equal(set.json().job_token_policies_enabled, false)
  assert.equal(set.json().package_registry.maven.configured, false, 'the package rules are untouched')
  assert.equal((await g.store.get(200))?.jobTokenPoliciesEnabled, false, 'stored with the project')

  const logsBefore = g.logs.length
  const after = await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })
  assert.equal(after.status, 200, after.text)
  assert.equal(g.seen.at(-1)?.url, DEPLOY)
  assert.equal(g.logs.slice(logsBefore).find(l => l.msg === 'decision')?.reason, 'FINE_GRAINED_POLICIES_OFF')
  // Still an allowlist: a job that is not on it stays out.
  assert.equal((await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.tools })).json().code, 'NOT_ALLOWLISTED')

  const events = (await send(g.url, 'GET', `${PERMISSIONS}/audit_events`, op)).json() as Array<Record<string, unknown>>
  assert.equal(events.length, 1)
  assert.deepEqual({ action: events[0]!.action, before: events[0]!.before, after: events[0]!.after, request_id: events[0]!.request_id, actor: events[0]!.actor },
    { action: 'update_job_token_permissions', before: { job_token_policies_enabled: null }, after: { job_token_policies_enabled: false }, request_id: 'turn-off', actor: { type: 'user', id: 41, username: 'mia' } })

  // Both fields in one PATCH, then back to the instance setting with null.
  const both = await send(g.url, 'PATCH', PERMISSIONS, { ...op, ...json }, JSON.stringify({ job_token_policies_enabled: true, package_registry: { maven: { write: 'maintainer' } } }))
  assert.equal(both.status, 200, both.text)
  assert.equal(both.json().job_token_policies_enabled, true)
  assert.equal(both.json().package_registry.maven.write, 'maintainer')
  assert.equal((await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })).json().code, 'MISSING_POLICIES')
  const reset = await send(g.url, 'PATCH', PERMISSIONS, { ...op, ...json }, JSON.stringify({ job_token_policies_enabled: null }))
  assert.equal(reset.json().job_token_policies_enabled, null)
  assert.equal('jobTokenPoliciesEnabled' in ((await g.store.get(200)) ?? {}), false)
  assert.equal((await g.store.get(200))?.packageRules?.maven?.write, 'maintainer', 'the package rules stay')
})

test('bad values are refused by field; job tokens and Developers cannot change it', async (t) => {
  const g = await adminGate(t)
  const bad = await send(g.url, 'PATCH', PERMISSIONS, { ...op, ...json }, JSON.stringify({ job_token_policies_enabled: 'maybe' }))
  assert.equal(bad.status, 400, bad.text)
  assert.ok(JSON.stringify(bad.json()).includes('job_token_policies_enabled'))
  const form = await send(g.url, 'PATCH', PERMISSIONS, { ...op, 'content-type': 'application/x-www-form-urlencoded' }, 'job_token_policies_enabled=false')
  assert.equal(form.status, 200, form.text)
  assert.equal(form.json().job_token_policies_enabled, false, 'form bodies say false as text')
  const developer = await send(g.url, 'PATCH', PERMISSIONS, { 'private-token': USERS.developer, ...json }, JSON.stringify({ job_token_policies_enabled: true }))
  assert.equal(developer.status, 403)
  const job = await send(g.url, 'PATCH', PERMISSIONS, { 'job-token': TOKENS.app, ...json }, JSON.stringify({ job_token_policies_enabled: true }))
  assert.equal(job.status, 403)
  assert.equal((await g.store.get(200))?.jobTokenPoliciesEnabled, false)
})

test('GATE_FINE_GRAINED_POLICIES=off for the instance; a project may still enforce', async (t) => {
  const g = await adminGate(t, { GATE_FINE_GRAINED_POLICIES: 'off' })
  const res = await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })
  assert.equal(res.status, 200, res.text)
  await send(g.url, 'PATCH', PERMISSIONS, { ...op, ...json }, JSON.stringify({ job_token_policies_enabled: true }))
  assert.equal((await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })).json().code, 'MISSING_POLICIES')
})

test('the default enforces; a bad GATE_FINE_GRAINED_POLICIES stops the start naming it', async (t) => {
  const g = await startTestGate(t)
  assert.equal((await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })).json().code, 'MISSING_POLICIES')
  assert.throws(() => loadConfig({ GATE_UPSTREAM_URL: 'http://gitlab', GATE_FINE_GRAINED_POLICIES: 'later' }), /GATE_FINE_GRAINED_POLICIES/)
})

test('GraphQL twin: updateJobTokenPermissions sets jobTokenPoliciesEnabled, audited the same', async (t) => {
  const g = await adminGate(t)
  const gql = (query: string, variables?: unknown): string => JSON.stringify({ query, ...(variables === undefined ? {} : { variables }) })
  const UPDATE = `mutation($input: UpdateJobTokenPermissionsInput!) {
    updateJobTokenPermissions(input: $input) { errors jobTokenPermissions { jobTokenPoliciesEnabled } } }`
  const READ = 'query { project(fullPath: "acme/lib") { jobTokenPermissions { jobTokenPoliciesEnabled } } }'
  const headers = { ...json, 'private-token': USERS.maintainer }
  assert.equal((await send(g.url, 'POST', '/api/graphql', headers, gql(READ))).json().data.project.jobTokenPermissions.jobTokenPoliciesEnabled, null)
  const off = await send(g.url, 'POST', '/api/graphql', headers, gql(UPDATE, { input: { projectPath: 'acme/lib', packageRegistry: [], jobTokenPoliciesEnabled: false } }))
  assert.equal(off.status, 200, off.text)
  assert.deepEqual(off.json().data.updateJobTokenPermissions, { errors: [], jobTokenPermissions: { jobTokenPoliciesEnabled: false } })
  assert.equal((await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })).status, 200)
  // Omitted: left as it is.
  await send(g.url, 'POST', '/api/graphql', headers, gql(UPDATE, { input: { projectPath: 'acme/lib', packageRegistry: [{ format: 'maven', write: 'MAINTAINER' }] } }))
  assert.equal((await g.store.get(200))?.jobTokenPoliciesEnabled, false)
  const audit = await g.store.readAudit(200, { offset: 0, limit: 5 })
  assert.deepEqual(audit.events.at(-1)?.after, { package_registry: {}, job_token_policies_enabled: false })
  assert.equal(g.seen.filter(s => s.url === '/api/graphql').length, 0, 'answered by the gate')
})

const NAMESPACE = '/api/v4/groups/acme/job_token_policies'

test('the root namespace says false: a fine-grained entry lacking the policy is allowed; a project-level true overrides it', async (t) => {
  const g = await adminGate(t)
  assert.equal((await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })).json().code, 'MISSING_POLICIES')
  const off = await send(g.url, 'PUT', NAMESPACE, { ...op, ...json }, JSON.stringify({ job_token_policies_enabled: false }))
  assert.equal(off.status, 200, off.text)

  const logsBefore = g.logs.length
  const allowed = await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })
  assert.equal(allowed.status, 200, allowed.text)
  assert.equal(g.seen.at(-1)?.url, DEPLOY)
  assert.equal(g.logs.slice(logsBefore).find(l => l.msg === 'decision')?.reason, 'FINE_GRAINED_POLICIES_OFF')
  assert.equal((await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.tools })).json().code, 'NOT_ALLOWLISTED', 'still an allowlist')
  assert.equal(g.logs.slice(logsBefore).find(l => l.msg === 'decision')?.stage, 'decide')

  // The project's own value wins over its root namespace's, both ways.
  await send(g.url, 'PATCH', PERMISSIONS, { ...op, ...json }, JSON.stringify({ job_token_policies_enabled: true }))
  assert.equal((await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })).json().code, 'MISSING_POLICIES', 'project true over namespace false')
  await send(g.url, 'PUT', NAMESPACE, { ...op, ...json }, JSON.stringify({ job_token_policies_enabled: true }))
  await send(g.url, 'PATCH', PERMISSIONS, { ...op, ...json }, JSON.stringify({ job_token_policies_enabled: false }))
  assert.equal((await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })).status, 200, 'project false over namespace true')
  await send(g.url, 'PATCH', PERMISSIONS, { ...op, ...json }, JSON.stringify({ job_token_policies_enabled: null }))
  assert.equal((await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })).json().code, 'MISSING_POLICIES', 'project unset: the namespace (true) decides')
})

test('another root namespace\'s setting changes nothing here; a namespace true enforces under an instance that does not', async (t) => {
  const g = await adminGate(t, { GATE_FINE_GRAINED_POLICIES: 'off' })
  assert.equal((await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })).status, 200, 'instance off')
  await send(g.url, 'PUT', '/api/v4/groups/other/job_token_policies', { ...op, ...json }, JSON.stringify({ job_token_policies_enabled: true }))
  assert.equal((await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })).status, 200, 'other/ is not acme/')
  await send(g.url, 'PUT', NAMESPACE, { ...op, ...json }, JSON.stringify({ job_token_policies_enabled: true }))
  assert.equal((await send(g.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })).json().code, 'MISSING_POLICIES', 'acme enforces')
  const packages = await send(g.url, 'GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.app })
  assert.equal(packages.status, 200, 'a held policy still passes')
})

// decide() takes the namespace's value beside the project's. Unread, it decides what it can: an
// allow stands whatever the namespace says, and only a deny it could turn asks for it.
test('decide: the namespace value between the project and the instance, read only for a deny it could turn', () => {
  const catalog = loadCatalog()
  const policies = createPolicyIndex(catalog.policies)
  const route = (id: string) => catalog.routes.find(r => r.id === id)!
  const deploy = route('post_projects_id_deployments')
  const read = route('get_projects_id_packages')
  const JOB = { jobProjectId: 100, jobProjectPath: 'acme/platform/app', ancestorGroupIds: [11, 10] }
  const grants = (project?: boolean): ProjectGrants => ({
    projectId: 200, projectPath: 'Acme/lib', inboundEnabled: true,
    entries: [{ targetType: 'project', targetId: 100, defaultPermissions: false, jobTokenPolicies: ['read_packages'], addedBy: null, createdAt: '2026-01-01T00:00:00Z' }],
    ...(project === undefined ? {} : { jobTokenPoliciesEnabled: project })
  })
  const ENFORCE = createInstanceSettings()
  const OFF = createInstanceSettings({ fineGrainedPolicies: 'off' })
  const table: Array<[string, typeof deploy, boolean | undefined, NamespacePolicies, typeof ENFORCE, string, boolean]> = [
    // name, route, project, namespace, instance, reason, needsNamespace
    ['namespace false, project unset', deploy, undefined, false, ENFORCE, 'FINE_GRAINED_POLICIES_OFF', false],
    ['namespace true, instance off', deploy, undefined, true, OFF, 'MISSING_POLICIES', false],
    ['namespace unset: the instance enforces', deploy, undefined, null, ENFORCE, 'MISSING_POLICIES', false],
    ['namespace unset: the instance is off', deploy, undefined, null, OFF, 'FINE_GRAINED_POLICIES_OFF', false],
    ['project true over namespace false', deploy, true, false, ENFORCE, 'MISSING_POLICIES', false],
    ['project false over namespace true', deploy, false, true, ENFORCE, 'FINE_GRAINED_POLICIES_OFF', false],
    ['unread, a deny the namespace could turn', deploy, undefined, NAMESPACE_UNREAD, ENFORCE, 'MISSING_POLICIES', true],
    ['unread under an instance that is off: asks too', deploy, undefined, NAMESPACE_UNREAD, OFF, 'MISSING_POLICIES', true],
    ['unread, the project decides: nothing to ask', deploy, true, NAMESPACE_UNREAD, OFF, 'MISSING_POLICIES', false],
    ['unread, the project is off: allowed without it', deploy, false, NAMESPACE_UNREAD, ENFORCE, 'FINE_GRAINED_POLICIES_OFF', false],
    ['unread, the policy is held: allowed without it', read, undefined, NAMESPACE_UNREAD, ENFORCE, 'POLICIES_GRANTED', false]
  ]
  for (const [name, r, project, namespace, settings, reason, asks] of table) {
    const decision = decide(r, JOB, 200, grants(project), settings, policies, undefined, namespace)
    assert.equal(decision.reason, reason, name)
    assert.equal(!decision.allow && decision.needsNamespace === true, asks, name)
  }
})

test('a project GitLab does not show the gate (no GATE_SERVICE_TOKEN): its root cannot be told, and the policies stay enforced', async (t) => {
  // The stored root says nothing and the instance says off, but the project may have moved under
  // a root that enforces them: docs/admin.md, "Fine-grained policies on older GitLab".
  const shown = await startTestGate(t, { GATE_FINE_GRAINED_POLICIES: 'off' })
  assert.equal((await send(shown.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })).status, 200)
  const noServiceToken = { GATE_FINE_GRAINED_POLICIES: 'off', GATE_SERVICE_TOKEN: undefined, GATE_UNRESOLVED_PROJECT: 'defer' }
  const hidden = await startTestGate(t, noServiceToken as unknown as Record<string, string>)
  const res = await send(hidden.url, 'POST', DEPLOY, { 'job-token': TOKENS.app })
  assert.equal(res.status, 403)
  assert.equal(res.json().code, 'MISSING_POLICIES')
})
