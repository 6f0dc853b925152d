// Older GitLab (feature flag add_policies_to_ci_job_token off; job_token_policies_enabled false on
// the root namespace, 17.11 to 18.4) lets a fine-grained entry act as default permissions. The
// gate enforced the policies anyway. GATE_FINE_GRAINED_POLICIES=off says so for the instance;
// `job_token_policies_enabled` of /projects/:id/job_token_permissions records the root
// namespace's setting on an accessed project, audited like every change.
// acme/lib (200) lets acme/platform/app (100, TOKENS.app) read packages only.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from '../../src/config.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { ADMIN, USERS, adminGate } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

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
