// Finding: a store failure reached no log. A decision the store could not answer was a 503
// GRANTS_STORE_UNAVAILABLE whose decision line said only that, and a configuration API refusal's
// line the same: the cause (a Redis ACL that refuses one of the commands the gate needs, naming
// it; a key of another type; a timeout) was dropped, and an ACL that listed the gate's commands
// one by one and missed one failed with nothing to say which. Both lines now carry it as
// `store_error`; the answer still says only 503.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis } from '../helpers/redis.ts'
import { TOKENS } from '../helpers/gate.ts'
import { adminGate, ADMIN } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

test('a 503 for a store failure logs its cause, on the decision line and the configuration API\'s', async t => {
  const redis = await startRedis(t)
  redis.cli('ACL', 'SETUSER', 'gate', 'on', '>gate-pw', '~*', '&*', '+@all')
  const g = await adminGate(t, { GATE_REDIS_URL: redis.url.replace('redis://', 'redis://gate:gate-pw@'), GATE_GRANT_CACHE_TTL_MS: '0', GATE_GRANT_STALE_WINDOW_MS: '0' })
  const decision = async (): Promise<{ status: number, body: string }> => {
    const answer = await send(g.url, 'GET', '/api/v4/projects/700/packages', { 'job-token': TOKENS.app })
    return { status: answer.status, body: answer.text }
  }
  assert.equal((await decision()).status, 403)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN }, JSON.stringify({ package_registry: { maven: { read: true } } }))
  assert.equal(patch.status, 200, 'a change, and its audit event')

  // A grant read's script measures each field with HSTRLEN.
  redis.cli('ACL', 'SETUSER', 'gate', '-hstrlen')
  const refused = await decision()
  assert.equal(refused.status, 503)
  assert.doesNotMatch(refused.body, /NOPERM|hstrlen/i, 'the answer names no cause')
  const line = g.logs.findLast(l => l.msg === 'decision')!
  assert.equal(line.reason, 'GRANTS_STORE_UNAVAILABLE')
  assert.match(String(line.store_error), /refuses HSTRLEN\b/, 'the command the script runs there is named')

  // The audit page's length.
  redis.cli('ACL', 'SETUSER', 'gate', '+hstrlen', '-xlen')
  const page = await send(g.url, 'GET', '/api/v4/projects/200/job_token_permissions/audit_events', { 'private-token': ADMIN })
  assert.equal(page.status, 503)
  assert.doesNotMatch(page.text, /NOPERM|xlen/i)
  const refusal = g.logs.findLast(l => l.msg === 'configuration API refused')!
  assert.match(String(refusal.store_error), /XLEN/i)
})
