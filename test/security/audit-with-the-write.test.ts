// Finding: a configuration change and its audit event were two Redis steps. The write (one Lua
// script) ran first; the audit event was appended only once the gate had the script's answer.
// With Redis slow (the script queued past the 1 s command timeout, then run), the gate answered
// 503 GRANTS_STORE_UNAVAILABLE, wrote neither the audit log line nor the audit stream entry, and
// the allowlist entry was gone all the same: a change with no trace in the audit trail (a retry
// then answers 404, the entry being gone already).
//
// Now the audit event is appended by the same script as the write (the audit stream shares the
// project's hash slot), so the store's log holds it exactly when the change was made; a write
// whose outcome the gate does not know is logged as not confirmed, with its before and after.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis, startRedisRelay } from '../helpers/redis.ts'
import { eventually } from '../helpers/eventually.ts'
import { adminGate, ADMIN } from '../helpers/admin-gate.ts'

test('a change Redis makes after the gate stopped waiting is in the audit trail', async t => {
  const redis = await startRedis(t)
  // Between the gate and Redis: holds the next write script (an EVALSHA naming the channel it
  // publishes on) for 1.5 s, past the gate's 1 s command timeout; Redis then runs it.
  const relay = await startRedisRelay(t, redis)
  const gate = await adminGate(t, { GATE_REDIS_URL: relay.url })

  relay.holdNext(/evalsha[\s\S]*jtg:invalidate/i, 1500)
  const res = await fetch(`${gate.url}/api/v4/projects/200/job_token_scope/allowlist/100`, { method: 'DELETE', headers: { 'private-token': ADMIN } })
  const body = await res.json() as Record<string, unknown>
  assert.equal(res.status, 503, JSON.stringify(body))

  // Redis ran the held script: the entry is gone.
  await eventually(() => !redis.cli('HGET', 'jtg:{p:200}:grants', 'doc').includes('"targetId":100'), { timeoutMs: 5000, message: 'the removal committed' })
  // ... and its audit event is in the project's audit stream.
  const events = redis.cli('XRANGE', 'jtg:{p:200}:audit', '-', '+')
  assert.match(events, /remove_project_allowlist_entry/, 'the audit stream holds the removal')
  assert.match(events, new RegExp(String(body.request_id)))
  // The log trail names the change, as not confirmed.
  const line = gate.logs.find(l => l.audit === true && l.request_id === body.request_id)
  assert.equal(line?.action, 'remove_project_allowlist_entry')
  assert.equal(line?.level, 50)
})
