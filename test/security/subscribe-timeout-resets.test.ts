// Finding: when the invalidation subscriber connected again (its connection was lost) and Redis
// answered its SUBSCRIBE later than the command timeout, ioredis failed the command and the
// subscriber only logged it. The SUBSCRIBE still reached Redis, so the connection went on hearing
// messages, but the cache was never reset for the ones published while it was away, the health
// check said `subscribed: false` for good, and the heartbeat (which only watches a confirmed
// subscription) was off. A revocation written by another replica in that gap was served from the
// cache for its whole TTL. Now a failed SUBSCRIBE drops the connection; the next one subscribes
// and resets the cache.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis, startRedisRelay } from '../helpers/redis.ts'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS, WORLD_GRANTS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { createRedisStore } from '../../src/grants/redis-store.ts'

test('a revocation published while the subscriber reconnects is enforced though its SUBSCRIBE answered late', async t => {
  const redis = await startRedis(t)
  // Between the gate and Redis: holds the next SUBSCRIBE for 1.5 s, past the 1 s command timeout.
  const relay = await startRedisRelay(t, redis)
  // A minute of TTL: only the invalidation (or a reset) can explain a deny within seconds.
  const g = await startTestGate(t, { GATE_REDIS_URL: relay.url, GATE_GRANT_CACHE_TTL_MS: '60000' })
  const other = await createRedisStore({ url: redis.url })
  t.after(() => other.close())
  const job = { 'job-token': TOKENS.app }
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/packages', job)).status, 200, 'acme/lib allowlists acme/platform/app')

  relay.holdNext(/subscribe/i, 1500)
  redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')
  // Another replica removes every entry while this gate's subscriber is away.
  const lib = WORLD_GRANTS.find(doc => doc.projectId === 200)!
  await other.put({ ...lib, entries: [] })

  await eventually(async () => (await send(g.url, 'GET', '/api/v4/projects/200/packages', job)).status === 403,
    { timeoutMs: 6000, message: 'the revocation enforced once the subscription is back' })
  await eventually(async () => (await g.store.health()).subscribed, { timeoutMs: 3000, message: 'the subscription reported back' })
})
