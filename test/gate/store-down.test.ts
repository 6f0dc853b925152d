// Redis down: cached grants serve for the stale window, then 503 (never an allow), and the
// gate recovers when Redis is back, without a restart.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis } from '../helpers/redis.ts'
import { startTestGate, TOKENS, WORLD_GRANTS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { eventually } from '../helpers/eventually.ts'

const job = { 'job-token': TOKENS.app }

test('a store outage fails closed after the stale window and recovers', async (t) => {
  const redis = await startRedis(t)
  const g = await startTestGate(t, { GATE_REDIS_URL: redis.url, GATE_GRANT_CACHE_TTL_MS: '100', GATE_GRANT_STALE_WINDOW_MS: '3000' })
  const path = '/api/v4/projects/200/packages'
  assert.equal((await send(g.url, 'GET', path, job)).status, 200)

  await redis.kill()
  await new Promise(resolve => setTimeout(resolve, 200))
  assert.equal((await send(g.url, 'GET', path, job)).status, 200, 'a cached answer inside the stale window')
  // Past TTL + stale window; the window is wide so that a busy machine cannot overrun the check above.
  await new Promise(resolve => setTimeout(resolve, 3000))
  const down = await send(g.url, 'GET', path, job)
  assert.equal(down.status, 503)
  assert.equal(down.json().code, 'GRANTS_STORE_UNAVAILABLE')
  assert.equal(down.headers['retry-after'], '5')
  const self = await send(g.url, 'POST', '/api/v4/projects/100/deployments', job)
  assert.equal(self.status, 200, 'self access needs no grants')
  const ready = await send(g.healthUrl, 'GET', '/-/readiness')
  assert.equal(ready.status, 503)
  assert.equal(ready.json().checks.store.ok, false)

  await redis.restart()
  // Redis keeps nothing on disk here: write the grants again, as an operator would.
  await eventually(async () => {
    for (const doc of WORLD_GRANTS) await g.store.put(validateProjectGrants(doc, { settings: createInstanceSettings() }))
    return true
  }, { intervalMs: 100, message: 'the store accepting writes again' })
  await eventually(async () => (await send(g.url, 'GET', path, job)).status === 200, { intervalMs: 100, message: 'recovered without restarting the gate' })
})
