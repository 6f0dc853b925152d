// Finding: a gate whose Redis user may run the store's commands but may not SUBSCRIBE to the
// invalidation channel (its ACL tightened while the gate runs, or a Redis restarted with an ACL
// file giving the user no channel: Redis 7's default for a new user) hears no invalidation from
// the other replicas. The subscriber tried again every second and was refused every time, and
// nothing else changed: a grant another replica removed was honoured from this replica's cache
// for its whole TTL, `/-/readiness` answered 200, and no line was logged; only the health
// check's `subscribed: false` said so. Now, while the subscription is down, no cached answer is
// fresh (every decision reads the store; concurrent ones share a read), readiness fails naming
// the cause, a line is logged for it, and losses are counted.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis } from '../helpers/redis.ts'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS, WORLD_GRANTS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { createRedisStore } from '../../src/grants/redis-store.ts'

test('a replica refused its invalidation subscription reads every decision from the store and is not ready', async t => {
  const redis = await startRedis(t)
  redis.cli('ACL', 'SETUSER', 'gate', 'on', '>gate-pw', '~*', '&*', '+@all')
  // A minute of TTL: only a read of the store can explain a deny within seconds.
  const g = await startTestGate(t, { GATE_REDIS_URL: redis.url.replace('redis://', 'redis://gate:gate-pw@'), GATE_GRANT_CACHE_TTL_MS: '60000' })
  // Another replica, whose user keeps its channel.
  const other = await createRedisStore({ url: redis.url })
  t.after(() => other.close())
  const job = { 'job-token': TOKENS.app }
  const packages = async (): Promise<number> => (await send(g.url, 'GET', '/api/v4/projects/200/packages', job)).status
  const readiness = async (): Promise<{ status: number, body: string }> => {
    const answer = await send(g.healthUrl, 'GET', '/-/readiness')
    return { status: answer.status, body: answer.text }
  }
  assert.equal(await packages(), 200, 'acme/lib allowlists acme/platform/app (now cached)')
  assert.equal((await readiness()).status, 200)

  // The user may still run every command but SUBSCRIBE: Redis cuts the subscription, and refuses it from then on.
  redis.cli('ACL', 'SETUSER', 'gate', '-subscribe')
  redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')
  const down = await eventually(async () => {
    const answer = await readiness()
    return answer.status === 503 && /NOPERM/.test(answer.body) ? answer : false
  }, { timeoutMs: 8000, message: 'readiness failing, naming the refusal' })
  assert.match(down.body, /"subscribed":false/)
  await eventually(() => g.logs.some(line => line.level === 50 && /invalidation subscription/.test(String(line.msg)) && /NOPERM/.test(String(line.reason))),
    { timeoutMs: 5000, message: 'a line naming the refusal' })

  // Another replica removes every entry; this one hears nothing of it, and denies at once all the same.
  const lib = WORLD_GRANTS.find(doc => doc.projectId === 200)!
  await other.put({ ...lib, entries: [] })
  assert.equal(await packages(), 403)
  await other.put(lib)
  assert.equal(await packages(), 200, 'and follows the store while it cannot subscribe')

  const metrics = (await send(g.healthUrl, 'GET', '/metrics')).text
  assert.match(metrics, /^job_token_gate_grant_store_subscription_losses_total [1-9]/m)
  assert.match(metrics, /^job_token_gate_grant_store_subscribed 0$/m)

  // Allowed again: the subscription is back (a reset), and so is readiness.
  redis.cli('ACL', 'SETUSER', 'gate', '+subscribe')
  await eventually(async () => (await readiness()).status === 200, { timeoutMs: 8000, message: 'ready once subscribed again' })
  await other.put({ ...lib, entries: [] })
  await eventually(async () => await packages() === 403, { timeoutMs: 5000, message: 'the invalidation heard again' })
})
