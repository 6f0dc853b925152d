// The Redis store through Sentinel: the contract, then a failover to the replica that the
// store follows by itself, with the cache flushed when the subscription moves.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRedisStore, type RedisGrantStore } from '../../src/grants/redis-store.ts'
import { createGrantCache } from '../../src/grants/cache.ts'
import { startRedis } from '../helpers/redis.ts'
import { grantsFor, storeContract, type StoreOptions } from './store-contract.ts'
import { eventually } from '../helpers/eventually.ts'

const master = await startRedis({ after })
const replica = await startRedis({ after }, { args: ['--replicaof', '127.0.0.1', String(master.port)] })
const sentinel = await startRedis({ after }, { sentinel: { masterName: 'grants', masterPort: master.port } })
const sentinels = [{ host: sentinel.host, port: sentinel.port }]
let prefixes = 0

async function openStore (prefix: string, options: StoreOptions = {}): Promise<RedisGrantStore> {
  const store = await createRedisStore({ ...options, sentinels, sentinelName: 'grants', keyPrefix: prefix, commandTimeoutMs: 500 })
  after(() => store.close())
  return store
}

storeContract('redis sentinel', async (options) => {
  const prefix = `s${++prefixes}`
  return { writer: await openStore(prefix, options), reader: await openStore(prefix, options) }
})

test('redis sentinel: after a failover the store writes to the new master and the cache flushes', async () => {
  const store = await openStore('failover')
  assert.equal(store.mode, 'sentinel')
  const cache = createGrantCache({ store, ttlMs: 60_000 })
  after(() => cache.close())
  await store.put(grantsFor(1, 'acme/one'))
  // The replica must have the write before the master goes, or the failover loses it.
  await eventually(() => replica.cli('hget', 'failover:{p:1}:grants', 'version').trim() === '1', { message: 'the replica catching up' })
  assert.equal((await cache.get(1))?.version, 1)

  await master.kill()
  await eventually(async () => { await store.put(grantsFor(1, 'acme/one', { inboundEnabled: false })); return true }, { timeoutMs: 30_000, intervalMs: 100, message: 'a write after the failover' })
  assert.match(replica.cli('role'), /^master/)
  // A hang detector: the subscriber finds the new master through the sentinel on its own
  // schedule (a reconnect, or its PING's timeout), which once took past 10 s in a CI run.
  await eventually(() => cache.stats().resets >= 1, { timeoutMs: 30_000, message: 'the subscription moved to the new master and reported it' })
  const got = await cache.get(1)
  assert.equal(got?.inboundEnabled, false)
  assert.ok((got?.version ?? 0) >= 2)
})
