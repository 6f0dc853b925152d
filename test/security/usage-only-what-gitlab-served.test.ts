// The least-privilege report counts what GitLab carried out. A job on an entry with default
// permissions could otherwise keep any policy in the suggestion an admin applies, by sending
// requests GitLab refuses (403: the job's user lacks the role; 404: nothing there): the gate
// allowed them, GitLab did nothing. Only answers below 400 are recorded.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { usageReport } from '../../src/usage/report.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { scrape, total } from '../helpers/metrics.ts'

const policies = createPolicyIndex(loadCatalog().policies)

test('usage: a request GitLab refused or found nothing for is not recorded; one it served is', async (t) => {
  const g = await startTestGate(t)
  // other/tools lets every acme job in with default permissions: the entry an admin would narrow.
  await g.store.put(validateProjectGrants({
    projectId: 300,
    projectPath: 'other/tools',
    inboundEnabled: true,
    entries: [{ targetType: 'group', targetId: 10, defaultPermissions: true, jobTokenPolicies: [], addedBy: null, createdAt: '2026-01-01T00:00:00Z' }]
  }, { settings: createInstanceSettings(), policies }))
  const job = { 'job-token': TOKENS.app }
  g.respond = (req, res) => {
    // GitLab: the job's user may read deployments, not create them; package 999 does not exist.
    const status = req.method === 'POST' ? 403 : req.url?.includes('/packages/999') === true ? 404 : req.url?.includes('/download') === true ? 302 : 200
    res.writeHead(status, { 'content-type': 'application/json', ...(status === 302 ? { location: 'https://objects.example/x' } : {}) })
    res.end(JSON.stringify({ message: String(status) }))
  }
  assert.equal((await send(g.url, 'POST', '/api/v4/projects/300/deployments', job)).status, 403)
  assert.equal((await send(g.url, 'DELETE', '/api/v4/projects/300/packages/999', job)).status, 404)
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/300/deployments', job)).status, 200)
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/300/jobs/artifacts/main/download', job)).status, 302)
  // The gate allowed all four: the decision log says so.
  assert.deepEqual(g.logs.filter(l => l.msg === 'decision').map(l => [l.decision, l.status]), [['allow', 403], ['allow', 404], ['allow', 200], ['allow', 302]])
  await g.gate.usage.flush()

  const report = await usageReport(g.store, 300, { sinceMs: Date.now() - 3_600_000, policies })
  const entry = report.entries[0]!
  assert.equal(entry.requests, 2, 'the two requests GitLab served')
  assert.deepEqual(entry.used_policies, { read_deployments: 1, read_jobs: 1 }, 'no admin_deployments, admin_packages or read_packages')
  assert.deepEqual(entry.suggested_job_token_policies, ['read_deployments', 'read_jobs'])
  assert.equal(total((await scrape(g.healthUrl)).samples, 'job_token_gate_usage_records_total'), 2)
})
