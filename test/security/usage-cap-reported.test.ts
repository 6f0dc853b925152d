// GATE_USAGE_MAX_JOB_PROJECTS bounds the job projects recorded per accessed project and day. The
// report read from a day over the cap left out what the later job projects used and said
// nothing of it: an admin narrowing an entry on that report removed policies those jobs needed
// (500 job projects under a group entry, or anyone able to run jobs in that many projects of the
// group, early in the UTC day). The report names such days and the requests left out.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { ADMIN, adminGate } from '../helpers/admin-gate.ts'
import { scrape, total } from '../helpers/metrics.ts'
import { startRedis } from '../helpers/redis.ts'

const redis = await startRedis({ after })

for (const name of ['memory', 'redis'] as const) {
  test(`${name} store: a day over the job-project cap is reported incomplete, with the requests left out`, async (t) => {
    const g = await adminGate(t, { GATE_USAGE_MAX_JOB_PROJECTS: '1', ...(name === 'redis' ? { GATE_REDIS_URL: redis.url } : {}) })
    // acme/platform/app reads packages of acme/lib (its project entry); acme/platform/web, on the
    // acme group entry (default permissions), publishes one: over the cap of 1 job project.
    assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.app })).status, 200)
    await g.gate.usage.flush()
    assert.equal((await send(g.url, 'PUT', '/api/v4/projects/200/packages/npm/foo', { 'job-token': TOKENS.web })).status, 200)
    assert.equal((await send(g.url, 'PUT', '/api/v4/projects/200/packages/npm/bar', { 'job-token': TOKENS.web })).status, 200)
    await g.gate.usage.flush()
    assert.equal(total((await scrape(g.healthUrl)).samples, 'job_token_gate_usage_dropped_total'), 1)

    const res = await send(g.url, 'GET', '/api/v4/projects/200/job_token_scope/usage', { 'private-token': ADMIN })
    assert.equal(res.status, 200, res.text)
    const report = res.json()
    const group = report.entries.find((e: { target_type: string }) => e.target_type === 'group')
    assert.equal(group.requests, 0, 'web\'s publishes were over the cap')
    assert.deepEqual(report.incomplete_days, [{ day: new Date().toISOString().slice(0, 10), dropped_requests: 2 }])
  })
}
