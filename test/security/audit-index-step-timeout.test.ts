// Finding: a Redis store write first points the path's index entry at the project (reads, then a
// compare-and-set script), and only then sends the script that writes the document with its audit
// event. A command of that first step that timed out (Redis stalled, paused or slow) failed the
// write before the document's script was ever sent, but the audit log line said the change was
// `not confirmed: it may have been made` (level error, `outcome: "unknown"`), the line of a write
// whose outcome is unknown: a removal that certainly did not happen read as one that may have
// taken effect. The store now says that a failure before the document's script wrote nothing of
// the change, and the line says it was refused, not made.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis, startRedisRelay } from '../helpers/redis.ts'
import { adminGate, ADMIN } from '../helpers/admin-gate.ts'

test('a write whose path index step timed out is logged as not made, and is not made', async t => {
  const redis = await startRedis(t)
  const relay = await startRedisRelay(t, redis)
  const gate = await adminGate(t, { GATE_REDIS_URL: relay.url })
  const before = redis.cli('HGET', 'jtg:{p:200}:grants', 'version').trim()

  // The index step's first read (a script over the path's entry) held past the 1 s command timeout.
  relay.holdNext(/evalsha[\s\S]*\{path:acme\/lib\}:id/i, 1500)
  const res = await fetch(`${gate.url}/api/v4/projects/200/job_token_scope/allowlist/100`, { method: 'DELETE', headers: { 'private-token': ADMIN } })
  const body = await res.json() as Record<string, unknown>
  assert.equal(res.status, 503, JSON.stringify(body))
  await new Promise(resolve => setTimeout(resolve, 1000))
  assert.match(redis.cli('HGET', 'jtg:{p:200}:grants', 'doc'), /"targetId":100/, 'the entry is still there')
  assert.equal(redis.cli('HGET', 'jtg:{p:200}:grants', 'version').trim(), before)
  assert.equal(redis.cli('XLEN', 'jtg:{p:200}:audit').trim(), '0')
  const line = gate.logs.find(l => l.audit === true && l.request_id === body.request_id)
  assert.equal(line?.action, 'remove_project_allowlist_entry')
  assert.equal(line?.outcome, 'not_made', JSON.stringify(line))
  assert.equal(line?.level, 40)
})
