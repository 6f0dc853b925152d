// The usage recorder holds at most 10,000 (day, accessed project, job project) keys between two
// writes to the store; a record past them was dropped and counted in a metric only. A job that
// reaches many projects (a group entry that many projects list, or projects whose inbound scope is
// off) fills that batch within one flush interval with one request to each, and every other
// project's usage in that interval was then lost while its report named the day complete: an
// admin narrowing an entry on it removed what those jobs used. Such requests now count as the
// job-project cap's do, and the report names their day in `incomplete_days`.
// Here, through a real gate (10,000 requests, so in `npm run test:slow`), acme/platform/app (100)
// reads 10,000 projects that let the acme group (10) in; then acme/platform/web (600) reads
// acme/lib (200) through its acme group entry. usage-pending-drops-reported.test.ts checks the
// recorder and both stores directly.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { TOKENS } from '../helpers/gate.ts'
import { ADMIN, adminGate } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { scrape, total } from '../helpers/metrics.ts'

const policies = createPolicyIndex(loadCatalog().policies)
const BATCH = 10_000

test('usage: requests dropped because the pending batch was full make their day incomplete in the report', async (t) => {
  // No flush during the test: the batch fills as it would within one interval.
  const g = await adminGate(t, { GATE_USAGE_FLUSH_INTERVAL_MS: '3600000' })
  const settings = createInstanceSettings()
  const first = 20_000
  for (let id = first; id < first + BATCH; id++) {
    await g.store.put(validateProjectGrants({
      projectId: id,
      projectPath: `many/p${id}`,
      inboundEnabled: true,
      entries: [{ targetType: 'group', targetId: 10, defaultPermissions: true, jobTokenPolicies: [], addedBy: null, createdAt: '2026-01-01T00:00:00Z' }]
    }, { settings, policies }))
  }
  const flood = { 'job-token': TOKENS.app }
  for (let id = first; id < first + BATCH; id += 50) {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => send(g.url, 'GET', `/api/v4/projects/${id + i}/packages`, flood)))
    for (const a of answers) assert.equal(a.status, 200)
  }
  // A job's read of acme/lib through its group entry (default permissions), GitLab serving it.
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.web })).status, 200)
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/releases', { 'job-token': TOKENS.web })).status, 200)
  assert.equal(total((await scrape(g.healthUrl)).samples, 'job_token_gate_usage_dropped_total'), 2)
  await g.gate.usage.flush()

  const report = (await send(g.url, 'GET', '/api/v4/projects/200/job_token_scope/usage', { 'private-token': ADMIN })).json()
  const group = report.entries.find((e: { target_type: string }) => e.target_type === 'group')
  assert.equal(group.requests, 0, 'web\'s reads could not be kept')
  assert.deepEqual(report.incomplete_days, [{ day: new Date().toISOString().slice(0, 10), dropped_requests: 2 }],
    'the report says it misses them, so the entry is not narrowed on it')
})
