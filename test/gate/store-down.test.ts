// Redis down: cached grants serve for the stale window, then 503 (never an allow), and the
// gate recovers when Redis is back, without a restart. Two gates share the Redis, both asking the
// store on every request (TTL 0), so the stale window alone decides what the outage does: an hour
// on one, nothing on the other. No time has to pass; the window's exact boundary is tested on a
// moved clock in test/grants/cache.test.ts and test/grants/outage.test.ts.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis } from '../helpers/redis.ts'
import { startTestGate, TOKENS, WORLD_GRANTS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { eventually } from '../helpers/eventually.ts'
import type { RedisGrantStore } from '../../src/grants/redis-store.ts'

const job = { 'job-token': TOKENS.app }

test('a store outage fails closed after the stale window and recovers', async (t) => {
  const redis = await startRedis(t)
  const env = { GATE_REDIS_URL: redis.url, GATE_GRANT_CACHE_TTL_MS: '0' }
  const inside = await startTestGate(t, { ...env, GATE_GRANT_STALE_WINDOW_MS: '3600000' })
  const past = await startTestGate(t, { ...env, GATE_GRANT_STALE_WINDOW_MS: '0' }, { seed: false })
  const path = '/api/v4/projects/200/packages'
  assert.equal((await send(inside.url, 'GET', path, job)).status, 200)
  assert.equal((await send(past.url, 'GET', path, job)).status, 200)

  await redis.kill()
  assert.equal((await send(inside.url, 'GET', path, job)).status, 200, 'a cached answer inside the stale window')
  assert.ok(inside.gate.grants.stats().staleServed >= 1)
  const down = await send(past.url, 'GET', path, job)
  assert.equal(down.status, 503, 'past the stale window: fail closed')
  assert.equal(down.json().code, 'GRANTS_STORE_UNAVAILABLE')
  assert.equal(down.headers['retry-after'], '5')
  assert.equal(past.gate.grants.stats().staleServed, 0)
  const self = await send(past.url, 'POST', '/api/v4/projects/100/deployments', job)
  assert.equal(self.status, 200, 'self access needs no grants')
  const ready = await send(past.healthUrl, 'GET', '/-/readiness')
  assert.equal(ready.status, 503)
  assert.equal(ready.json().checks.store.ok, false)

  await redis.restart()
  // Redis keeps nothing on disk here: accept the loss and write the grants again, as an operator
  // would (test/grants/store-loss.test.ts: what the gates do before that).
  await eventually(async () => (await (inside.store as RedisGrantStore).acceptLoss()).written === 1, { intervalMs: 100, message: 'the marker written back' })
  await eventually(async () => {
    for (const doc of WORLD_GRANTS) await inside.store.put(validateProjectGrants(doc, { settings: createInstanceSettings() }))
    return true
  }, { intervalMs: 100, message: 'the store accepting writes again' })
  for (const g of [inside, past]) {
    await eventually(async () => (await send(g.url, 'GET', path, job)).status === 200, { intervalMs: 100, message: 'recovered without restarting the gate' })
  }
})

test('shadowed requests are forwarded through a store outage, logged would_deny with the outage\'s code; the rest fail closed', async (t) => {
  const redis = await startRedis(t)
  const env = { GATE_REDIS_URL: redis.url, GATE_GRANT_CACHE_TTL_MS: '0', GATE_GRANT_STALE_WINDOW_MS: '0' }
  const packagesOnly = await startTestGate(t, { ...env, GATE_SHADOW_RESOURCES: 'packages' })
  const everything = await startTestGate(t, { ...env, GATE_MODE: 'shadow' }, { seed: false })
  await redis.kill()
  const cases: ReadonlyArray<readonly [typeof packagesOnly, string, number, string]> = [
    [packagesOnly, '/api/v4/projects/200/packages', 200, 'would_deny'],
    [packagesOnly, '/api/v4/projects/200/deployments', 503, 'error'],
    [everything, '/api/v4/projects/200/packages', 200, 'would_deny'],
    [everything, '/api/v4/projects/200/deployments', 200, 'would_deny']
  ]
  for (const [g, path, status, decision] of cases) {
    const res = await send(g.url, 'GET', path, job)
    assert.equal(res.status, status, `${path}: ${res.text}`)
    const line = g.logs.filter(l => l.msg === 'decision').at(-1)
    assert.deepEqual([line?.decision, line?.reason], [decision, 'GRANTS_STORE_UNAVAILABLE'], path)
  }
})
