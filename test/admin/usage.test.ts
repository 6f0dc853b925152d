// GET /projects/:id/job_token_scope/usage: the least-privilege report through the API.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { ADMIN, adminGate } from '../helpers/admin-gate.ts'

test('the usage report lists, per allowlist entry, the policies used and a minimal set', async (t) => {
  const g = await adminGate(t)
  const job = { 'job-token': TOKENS.app }
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/packages', job)).status, 200)
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/packages/5', job)).status, 200)
  assert.equal((await send(g.url, 'PUT', '/api/v4/projects/200/packages/npm/foo', job)).status, 403, 'denies are not usage')
  await g.gate.usage.flush()

  const res = await send(g.url, 'GET', '/api/v4/projects/200/job_token_scope/usage', { 'private-token': ADMIN })
  assert.equal(res.status, 200, res.text)
  const report = res.json()
  assert.equal(report.project_id, 200)
  const entry = report.entries.find((e: { target_type: string, target_id: number }) => e.target_type === 'project' && e.target_id === 100)
  assert.ok(entry, 'the project entry of acme/platform/app is listed')
  assert.equal(entry.requests, 2)
  assert.deepEqual(entry.used_policies, { read_packages: 2 })
  assert.deepEqual(entry.suggested_job_token_policies, ['read_packages'])

  assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/job_token_scope/usage', job)).status, 403, 'job tokens may not read it')
  assert.equal((await send(g.url, 'POST', '/api/v4/projects/200/job_token_scope/usage', { 'private-token': ADMIN })).status, 405)
})
