// Finding: the audit events a project's page lists are read from its Redis stream as they are
// stored. An event of another shape there (one without its actor, added by hand or by another
// tool) reached the answer's view, which threw: the configuration API answered 500 with no code.
// Such an event now fails the read as an unreadable document does: 503 GRANTS_STORE_UNAVAILABLE.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis } from '../helpers/redis.ts'
import { adminGate, ADMIN } from '../helpers/admin-gate.ts'

const auditPage = (url: string): Promise<Response> => fetch(`${url}/api/v4/projects/700/job_token_permissions/audit_events`, { headers: { 'private-token': ADMIN } })

test('an audit event of another shape in the store fails the audit page with 503, never a 500', async t => {
  const redis = await startRedis(t)
  const g = await adminGate(t, { GATE_REDIS_URL: redis.url })
  const removal = await fetch(`${g.url}/api/v4/projects/700/job_token_scope/groups_allowlist/20`, { method: 'DELETE', headers: { 'private-token': ADMIN } })
  assert.equal(removal.status, 204)
  const page = await auditPage(g.url)
  assert.equal(page.status, 200)
  assert.equal(((await page.json()) as unknown[]).length, 1)

  for (const event of ['{"action":"x","time":"t","requestId":"r"}', '{"actor":{"kind":"user"},"action":"x","time":"t","requestId":"r"}', '[1]', '5']) {
    redis.cli('DEL', 'jtg:{p:700}:audit')
    redis.cli('XADD', 'jtg:{p:700}:audit', '*', 'e', event)
    const res = await auditPage(g.url)
    const body = await res.json() as Record<string, unknown>
    assert.equal(res.status, 503, `${event}: ${JSON.stringify(body)}`)
    assert.equal(body.code, 'GRANTS_STORE_UNAVAILABLE', event)
  }
})
