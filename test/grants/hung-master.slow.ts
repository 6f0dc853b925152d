// A master that stops answering (a hung host, a partition) rather than crashing: its
// connections stay open, Sentinel or the cluster promotes its replica, and later the old master
// may wake up still calling itself master, with the data it had. A gate replica must follow the
// promotion (not fail closed for as long as the old master hangs) and must never read the old
// master's copy of an allowlist changed on the new one.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRedisStore, type RedisStoreOptions } from '../../src/grants/redis-store.ts'
import { startRedis, startRedisCluster, type RedisServer } from '../helpers/redis.ts'
import { eventually } from '../helpers/eventually.ts'
import { allowing, createReplica, type Replica } from './replica.ts'

const job = { jobProjectId: 61, ancestorGroupIds: [] }
// Short, so that a replica reading the wrong node shows within seconds.
const cacheOptions = { ttlMs: 500, staleWindowMs: 1000 }

/**
 * The scenario on `gate`, once the allowlist of project 60 lets job project 61 in: `oldMaster`
 * freezes, `promoted()` says when its replica took over, a second gate (`writerOptions`) removes
 * the entry there; `gate` must deny while the old master is still frozen, and keep denying
 * after it wakes up until it has been demoted.
 */
async function freezeAndRevoke (gate: Replica, oldMaster: RedisServer, promoted: () => boolean, writerOptions: RedisStoreOptions): Promise<void> {
  assert.equal((await gate.decide(job, 60)).allow, true)
  oldMaster.pause()
  after(() => oldMaster.resume())
  await eventually(promoted, { timeoutMs: 30_000, intervalMs: 100, message: 'the replica promoted' })
  const writer = await eventually(async () => await createRedisStore(writerOptions), { timeoutMs: 20_000, intervalMs: 100, message: 'a second gate connecting' })
  after(() => writer.close())
  await eventually(async () => { await writer.put(allowing(60, [62])); return true }, { timeoutMs: 20_000, intervalMs: 100, message: 'the removal written on the new master' })

  // Following the old master, every read would time out: stale, then 503, never this deny.
  await eventually(async () => (await gate.decide(job, 60)).reason === 'NOT_ALLOWLISTED', { timeoutMs: 15_000, intervalMs: 50, message: 'the gate enforcing the removal while the old master hangs' })

  await wakeWithoutAllow(gate, oldMaster)
  assert.equal((await gate.decide(job, 60)).reason, 'NOT_ALLOWLISTED')
}

/** Wakes `oldMaster` (its copy still allows) and asks `gate` until Sentinel demotes it: never an allow. */
async function wakeWithoutAllow (gate: Replica, oldMaster: RedisServer): Promise<void> {
  oldMaster.resume()
  const allowed: number[] = []
  const woke = performance.now()
  await eventually(async () => {
    const decision = await gate.decide(job, 60).catch(() => null)
    if (decision?.allow === true) allowed.push(Math.round(performance.now() - woke))
    return !/^master/.test(oldMaster.cli('role'))
  }, { timeoutMs: 30_000, intervalMs: 50, message: 'the old master demoted' })
  assert.deepEqual(allowed, [], 'no allow from the old master\'s copy after it woke up (ms after waking)')
}

test('sentinel: a hung master is left for the promoted replica, and its stale copy is never read', async () => {
  const master = await startRedis({ after })
  const replica = await startRedis({ after }, { args: ['--replicaof', '127.0.0.1', String(master.port)] })
  const sentinel = await startRedis({ after }, { sentinel: { masterName: 'hung', masterPort: master.port } })
  const options: RedisStoreOptions = { sentinels: [{ host: sentinel.host, port: sentinel.port }], sentinelName: 'hung', keyPrefix: 'hung', commandTimeoutMs: 300 }
  const gate = await createReplica(options, cacheOptions)
  after(() => gate.close())
  await gate.store.put(allowing(60, [61]))
  await eventually(() => replica.cli('hget', 'hung:{p:60}:grants', 'version').trim() === '1', { message: 'the replica catching up' })
  assert.equal((await gate.store.health()).subscribedTo, `127.0.0.1:${master.port}`, 'health names the node the subscriber is on')
  await freezeAndRevoke(gate, master, () => /^master/.test(replica.cli('role')), options)
  assert.equal((await gate.store.health()).subscribedTo, `127.0.0.1:${replica.port}`)
  await hearsWrites(gate)
})

/** A write on the master the gate follows now reaches its cache as an invalidation. */
async function hearsWrites (gate: Replica): Promise<void> {
  // The subscriber may be connected and not yet subscribed again (a message published then is
  // lost, and its resubscription reports a reset instead): wait for the subscription itself.
  await eventually(async () => (await gate.store.health()).subscribed === true, { timeoutMs: 15_000, intervalMs: 100, message: 'the subscription established' })
  const heard = gate.cache.stats().invalidationsReceived
  await gate.store.put(allowing(60, [63]))
  await eventually(() => gate.cache.stats().invalidationsReceived > heard, { message: 'the invalidation of a write on the new master' })
}

/** Three sentinels of `master` under `name`, once each knows the two others. */
async function threeSentinels (name: string, master: RedisServer): Promise<[RedisServer, RedisServer, RedisServer]> {
  const sentinels: RedisServer[] = []
  for (let i = 0; i < 3; i++) sentinels.push(await startRedis({ after }, { sentinel: { masterName: name, masterPort: master.port } }))
  for (const s of sentinels) {
    await eventually(() => /num-other-sentinels\n2\n/.test(s.cli('sentinel', 'master', name)), { timeoutMs: 30_000, intervalMs: 100, message: 'the sentinels knowing each other' })
  }
  return sentinels as [RedisServer, RedisServer, RedisServer]
}

test('sentinel: a sentinel that hangs with the master is left for the others', async () => {
  const master = await startRedis({ after })
  const replica = await startRedis({ after }, { args: ['--replicaof', '127.0.0.1', String(master.port)] })
  const [hung, ...others] = await threeSentinels('hungsentinel', master)
  const all = [hung, ...others].map(s => ({ host: s.host, port: s.port }))
  const options: RedisStoreOptions = { sentinels: all, sentinelName: 'hungsentinel', keyPrefix: 'hungsentinel', commandTimeoutMs: 300 }
  const gate = await createReplica(options, cacheOptions)
  after(() => gate.close())
  await gate.store.put(allowing(60, [61]))
  await eventually(() => replica.cli('hget', 'hungsentinel:{p:60}:grants', 'version').trim() === '1', { message: 'the replica catching up' })
  // The first sentinel the gate asks accepts connections and never answers.
  hung.pause()
  after(() => hung.resume())
  await freezeAndRevoke(gate, master, () => /^master/.test(replica.cli('role')), { ...options, sentinels: all.slice(1) })
  assert.equal((await gate.store.health()).subscribedTo, `127.0.0.1:${replica.port}`)
  await hearsWrites(gate)
})

test('sentinel: while the gate cannot hear of the promotion, the woken master\'s copy is not read', async () => {
  const master = await startRedis({ after })
  const replica = await startRedis({ after }, { args: ['--replicaof', '127.0.0.1', String(master.port)] })
  // The gate asks one sentinel, which hangs with the master; the two others promote the replica
  // (a majority of three) and the gate hears nothing of it.
  const [asked, ...others] = await threeSentinels('deafsentinel', master)
  const options: RedisStoreOptions = { sentinels: [{ host: asked.host, port: asked.port }], sentinelName: 'deafsentinel', keyPrefix: 'deaf', commandTimeoutMs: 300 }
  const gate = await createReplica(options, cacheOptions)
  after(() => gate.close())
  await gate.store.put(allowing(60, [61]))
  await eventually(() => replica.cli('hget', 'deaf:{p:60}:grants', 'version').trim() === '1', { message: 'the replica catching up' })
  assert.equal((await gate.decide(job, 60)).allow, true)

  asked.pause()
  after(() => asked.resume())
  master.pause()
  after(() => master.resume())
  await eventually(() => /^master/.test(replica.cli('role')), { timeoutMs: 30_000, intervalMs: 100, message: 'the replica promoted' })
  const writer = await eventually(async () => await createRedisStore({ ...options, sentinels: others.map(s => ({ host: s.host, port: s.port })) }), { timeoutMs: 20_000, intervalMs: 100, message: 'a second gate connecting' })
  after(() => writer.close())
  await eventually(async () => { await writer.put(allowing(60, [62])); return true }, { timeoutMs: 20_000, intervalMs: 100, message: 'the removal written on the new master' })
  // The gate has seen the master go silent: its cached allow runs out, then every read fails.
  await eventually(async () => (await gate.decide(job, 60).catch(() => null)) === null, { timeoutMs: 15_000, intervalMs: 50, message: 'the gate failing closed while the master hangs' })

  // The old master wakes up still master, with the entry, and the gate's connections are on it:
  // without a sentinel to confirm it is still the master, nothing it answers is taken.
  await wakeWithoutAllow(gate, master)

  // Once its sentinel answers again the gate follows the new master.
  asked.resume()
  await eventually(async () => (await gate.decide(job, 60).catch(() => null))?.reason === 'NOT_ALLOWLISTED', { timeoutMs: 30_000, intervalMs: 50, message: 'the gate following the new master' })
  await eventually(async () => (await gate.store.health()).subscribedTo === `127.0.0.1:${replica.port}`, { timeoutMs: 15_000, intervalMs: 100, message: 'the subscription on the new master' })
  await hearsWrites(gate)
})

test('cluster: a hung master is left for the promoted replica, and its stale copy is never read', async () => {
  const cluster = await startRedisCluster({ after }, 3, 1)
  const options: RedisStoreOptions = { cluster: cluster.seeds, keyPrefix: 'hung', commandTimeoutMs: 300 }
  const gate = await createReplica(options, cacheOptions)
  after(() => gate.close())
  await gate.store.put(allowing(60, [61]))
  const slot = cluster.nodes[0]!.cli('cluster', 'keyslot', 'hung:{p:60}:grants').trim()
  // The slot holds the project's grants and the store's marker of that slot.
  const holds = (node: RedisServer): boolean => /^master/.test(node.cli('role')) && node.cli('cluster', 'countkeysinslot', slot).trim() === '2'
  const owner = cluster.nodes.find(holds)!
  const others = cluster.nodes.filter(n => n !== owner)
  await eventually(() => others.some(n => n.cli('cluster', 'countkeysinslot', slot).trim() === '2' && /master_link_status:up/.test(n.cli('info', 'replication'))), { message: 'the replica of the slot\'s master catching up' })
  // The second gate is seeded with live nodes only (a frozen seed would hang its start).
  await freezeAndRevoke(gate, owner, () => others.some(holds), { ...options, cluster: others.map(n => ({ host: n.host, port: n.port })) })
})

test('cluster: a subscription on a node that stops answering moves to another node and flushes the cache', async () => {
  const cluster = await startRedisCluster({ after }, 3, 1)
  // A long TTL: only an invalidation or a reset can make the gate see the removal in time.
  const gate = await createReplica({ cluster: cluster.seeds, keyPrefix: 'deaf' }, { ttlMs: 60_000 })
  after(() => gate.close())
  const heard = (await gate.store.health()).subscribedTo
  const deaf = cluster.nodes.find(n => `127.0.0.1:${n.port}` === heard)
  assert.ok(deaf !== undefined, `subscribed to a cluster node (${heard})`)
  const live = cluster.nodes.filter(n => n !== deaf)
  const writer = await createRedisStore({ cluster: live.map(n => ({ host: n.host, port: n.port })), keyPrefix: 'deaf' })
  after(() => writer.close())
  await writer.put(allowing(70, [61]))
  // The write's own invalidation first, so it cannot drop the entry cached next.
  await eventually(() => gate.cache.stats().invalidationsReceived >= 1, { message: 'the write\'s invalidation' })
  assert.equal((await gate.decide(job, 70)).allow, true)
  assert.equal((await gate.decide(job, 70)).allow, true)
  assert.equal(gate.cache.stats().hits, 1, 'the grant is cached')

  deaf.pause()
  after(() => deaf.resume())
  // The node's connections stay open: without a liveness check the subscriber would say it is
  // subscribed and hear nothing, and the cached allow would stand for the whole TTL.
  await eventually(async () => { await writer.put(allowing(70, [62])); return true }, { timeoutMs: 20_000, intervalMs: 100, message: 'the removal written' })
  // Enforced once the subscription is found lost (decisions then read the store), or moved.
  await eventually(async () => (await gate.decide(job, 70)).reason === 'NOT_ALLOWLISTED', { timeoutMs: 15_000, intervalMs: 50, message: 'the gate enforcing the removal' })
  assert.ok(gate.cache.stats().subscriptionLosses >= 1)
  await eventually(async () => {
    const health = await gate.store.health()
    return health.subscribed && health.subscribedTo !== heard
  }, { timeoutMs: 15_000, intervalMs: 100, message: 'the subscription on another node' })
  assert.ok(gate.cache.stats().resets >= 1)
})
