// A project whose inbound scope is off lets every job token in (INBOUND_DISABLED), and that is
// the project an admin reads the least-privilege report of before turning the scope on: GitLab
// logs these very accesses for it (Ci::JobToken::Authorization, the log its allowlist
// autopopulation reads), and the gate refuses autopopulation and points to this report instead.
// The report counted none of them, so it showed no job project using acme/open, and the scope
// turned on with the allowlist it suggested (none) broke every job that did.
// acme/open (500) has its inbound scope off and no entries; the instance does not enforce it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { adminGate, usageReport } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

test('usage: requests let in while the inbound scope is off are in the report, by job project', async (t) => {
  const g = await adminGate(t, { GATE_ENFORCE_INBOUND_SCOPE: 'false' })
  const job = { 'job-token': TOKENS.app }
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/500/packages', job)).status, 200)
  assert.equal((await send(g.url, 'POST', '/api/v4/projects/500/deployments', job)).status, 200)
  assert.deepEqual(g.logs.filter(l => l.msg === 'decision').map(l => l.reason), ['INBOUND_DISABLED', 'INBOUND_DISABLED'])

  const report = await usageReport(g, 500)
  assert.deepEqual(report.entries, [])
  assert.deepEqual(report.unmatched, [{
    job_project_id: 100,
    job_project_path: 'acme/platform/app',
    requests: 2,
    used_policies: { admin_deployments: 1, admin_environments: 1, read_packages: 1 },
    requests_without_policies: 0
  }], 'the job project the allowlist needs before the scope is turned on, and what it used')

})
