// With fine-grained policies off (older GitLab, or job_token_policies_enabled false), a
// fine-grained entry allows as default permissions would (FINE_GRAINED_POLICIES_OFF). That is
// when an admin reads the least-privilege report before turning the policies on, and the report
// counted none of those requests: the entry showed 0 requests and every policy it grants as
// unused, so the policies its jobs needed once enforced looked safe to remove.
// acme/lib (200) lets acme/platform/app (100, TOKENS.app) read packages only.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { ADMIN, adminGate, usageReport } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

test('usage: requests allowed through a fine-grained entry with the policies off are in the report', async (t) => {
  const g = await adminGate(t)
  const op = { 'private-token': ADMIN }
  const off = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...op, 'content-type': 'application/json' }, JSON.stringify({ job_token_policies_enabled: false }))
  assert.equal(off.status, 200, off.text)
  const job = { 'job-token': TOKENS.app }
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/packages', job)).status, 200)
  assert.equal((await send(g.url, 'POST', '/api/v4/projects/200/deployments', job)).status, 200)
  assert.deepEqual(g.logs.filter(l => l.msg === 'decision').map(l => l.reason), ['FINE_GRAINED_POLICIES_OFF', 'FINE_GRAINED_POLICIES_OFF'])

  const report = await usageReport(g, 200)
  const entry = report.entries.find((e: { target_type: string, target_id: number }) => e.target_type === 'project' && e.target_id === 100)
  assert.equal(entry.requests, 2)
  assert.deepEqual(entry.used_policies, { admin_deployments: 1, admin_environments: 1, read_packages: 1 })
  assert.deepEqual(entry.suggested_job_token_policies, ['admin_deployments', 'admin_environments', 'read_packages'], 'what turning the policies on would need')
  assert.deepEqual(entry.unused_policies, [], 'read_packages is used')
})
