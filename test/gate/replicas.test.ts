// Two gates sharing one Redis: a revocation written through one is enforced by the other by
// push invalidation, not TTL expiry (the cache TTL here is a minute). The lag is printed; its
// targets live in the benchmarks (npm run bench:invalidation), not in an assertion here.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { startRedis } from '../helpers/redis.ts'
import { startTestGate, TOKENS, WORLD_GRANTS } from '../helpers/gate.ts'
import { eventually } from '../helpers/eventually.ts'
import { send } from '../helpers/http.ts'

test('a revocation on one gate replica is enforced by the other (pushed, long before the cache TTL)', async (t) => {
  const redis = await startRedis(t)
  const env = { GATE_REDIS_URL: redis.url, GATE_GRANT_CACHE_TTL_MS: '60000' }
  const a = await startTestGate(t, env)
  const b = await startTestGate(t, env, { seed: false })
  const settings = createInstanceSettings()
  const lib = WORLD_GRANTS[0]!
  const granted = validateProjectGrants(lib, { settings })
  const revoked = validateProjectGrants({ ...lib, entries: [] }, { settings })
  const path = '/api/v4/projects/200/packages'
  const job = { 'job-token': TOKENS.app }
  const lags: number[] = []
  for (let i = 0; i < 20; i++) {
    await a.store.put(granted)
    await eventually(async () => (await send(b.url, 'GET', path, job)).status === 200, { intervalMs: 1, message: 'replica b to see the grant' })
    const started = performance.now()
    await a.store.put(revoked)
    // Within the 60 s TTL only the pushed invalidation can explain a deny (the timeout detects a hang).
    await eventually(async () => (await send(b.url, 'GET', path, job)).status === 403, { intervalMs: 1, message: 'replica b to enforce the revocation' })
    lags.push(performance.now() - started)
  }
  assert.ok(b.gate.grants.stats().invalidationsReceived >= 40, 'every write reached b as an invalidation')
  lags.sort((x, y) => x - y)
  const p99 = lags[Math.ceil(lags.length * 0.99) - 1]!
  t.diagnostic(`revocation enforced by the other replica: p50 ${lags[Math.floor(lags.length / 2)]!.toFixed(1)} ms, max ${p99.toFixed(1)} ms (write + HTTP round trips included)`)
})
