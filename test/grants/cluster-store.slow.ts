import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRedisStore, type RedisGrantStore } from '../../src/grants/redis-store.ts'
import { createGrantCache } from '../../src/grants/cache.ts'
import { startRedisCluster } from '../helpers/redis.ts'
import { GrantsStoreLostError } from '../../src/grants/errors.ts'
import { markerKeys } from '../../src/grants/redis-marker.ts'
import { runAcceptStoreLoss } from '../../src/cli/accept-store-loss.ts'
import { grantsFor, nextEvent, storeContract, type StoreOptions } from './store-contract.ts'
import { eventually } from '../helpers/eventually.ts'

const cluster = await startRedisCluster({ after })
let prefixes = 0

async function openStore (prefix: string, seeds = cluster.seeds, options: StoreOptions = {}): Promise<RedisGrantStore> {
  const store = await createRedisStore({ ...options, cluster: seeds, keyPrefix: prefix })
  after(() => store.close())
  return store
}

// Writer and reader are seeded with different nodes, so writes and invalidations cross nodes.
storeContract('redis cluster', async (options) => {
  const prefix = `c${++prefixes}`
  return { writer: await openStore(prefix, [cluster.seeds[0]!], options), reader: await openStore(prefix, [cluster.seeds[2]!], options) }
})

test('redis cluster: projects spread over the masters, each project in one slot', async () => {
  const store = await openStore('spread')
  assert.equal(store.mode, 'cluster')
  for (let id = 1; id <= 30; id++) await store.put(grantsFor(id, `acme/p${id}`))
  const perNode = cluster.nodes.map(node => node.cli('--scan', '--pattern', 'spread:{p:*}:grants').trim().split('\n').filter(Boolean).length)
  assert.equal(perNode.reduce((a, b) => a + b, 0), 30)
  assert.ok(perNode.every(n => n > 0), `every master holds some projects: ${perNode.join(', ')}`)
  // The hash tag puts a project's keys in one slot whatever the rest of the key says.
  const node = cluster.nodes[0]!
  assert.equal(node.cli('cluster', 'keyslot', 'spread:{p:7}:grants').trim(), node.cli('cluster', 'keyslot', 'p:7').trim())
})

test('redis cluster: an invalidation published on one master reaches a subscriber on another', async () => {
  const writer = await openStore('xnode', [cluster.seeds[1]!])
  const reader = await openStore('xnode', [cluster.seeds[0]!])
  // Find a project whose slot is not on the reader's seed node, so the message must cross.
  const seedId = cluster.nodes[0]!.cli('cluster', 'myid').trim()
  let id = 1
  for (; id < 100; id++) {
    const slot = Number(cluster.nodes[0]!.cli('cluster', 'keyslot', `xnode:{p:${id}}:grants`).trim())
    if (ownerOf(slot) !== seedId) break
  }
  const seen = nextEvent(reader, e => e.kind === 'project' && e.projectId === id)
  await writer.put(grantsFor(id, 'acme/cross'))
  const event = await seen
  assert.notEqual(ownerOf(Number(cluster.nodes[0]!.cli('cluster', 'keyslot', `xnode:{p:${id}}:grants`).trim())), seedId)
  assert.ok(event.kind === 'project' && event.version === 1)
  assert.equal((await reader.get(id))?.projectPath, 'acme/cross')
})

/** The node id owning `slot`, from CLUSTER NODES on the first node. */
function ownerOf (slot: number): string {
  const lines = cluster.nodes[0]!.cli('cluster', 'nodes').trim().split('\n')
  for (const line of lines) {
    const fields = line.split(' ')
    for (const range of fields.slice(8)) {
      const [from, to = from] = range.split('-').map(Number)
      if (slot >= from! && slot <= to!) return fields[0]!
    }
  }
  return ''
}

test('redis cluster: a master that lost its data is refused in its own slots only; a start counts them, and accepting writes them back', async () => {
  const store = await openStore('loss')
  assert.equal(store.marker.created, true)
  assert.equal(store.markerKeys.all.length, 16384, 'one marker per hash slot')
  for (let id = 1; id <= 30; id++) await store.put(grantsFor(id, `acme/p${id}`))
  // The first master loses what it held (FLUSHALL on one node: its markers and grants).
  const node = cluster.nodes[0]!
  const held = node.cli('--scan', '--pattern', 'loss:*').trim().split('\n').filter(Boolean)
  node.cli('flushall')
  const markers = held.filter(key => key.endsWith(':store')).length
  const gone = held.filter(key => key.endsWith(':grants')).map(key => Number(/\{p:(\d+)\}/.exec(key)![1]))
  assert.ok(gone.length > 0 && gone.length < 30 && markers > 4000, `${gone.length} projects, ${markers} markers on the first master`)

  for (let id = 1; id <= 30; id++) {
    if (gone.includes(id)) await assert.rejects(store.get(id), (err: unknown) => err instanceof GrantsStoreLostError && /the store marker loss:\{m[0-9a-z]+\}:store is gone/.test(err.message), `project ${id}`)
    else assert.equal((await store.get(id))?.projectPath, `acme/p${id}`, `project ${id} lives on a master that kept its data`)
  }
  const later = await openStore('loss')
  assert.deepEqual(later.marker, { id: store.marker.id, created: false, probed: 3, missing: 1, other: 0 }, 'a start sees the master that lost its data, and neither re-marks it nor takes the store for a new one')
  await assert.rejects(later.get(gone[0]!), GrantsStoreLostError)

  assert.deepEqual(await later.acceptLoss(), { id: store.marker.id, written: markers, other: 0 })
  assert.equal(await store.get(gone[0]!), null, 'accepted: what the lost master held is gone')
})

test('redis cluster: a start cut off while marking a new store leaves it to the next start, which finishes it', async () => {
  // A master that refuses writes (at its maxmemory) makes the first start fail after it settled
  // the id on the first marker and wrote some of the rest: as a start killed midway would.
  const first = markerKeys('cut', true).all[0]!
  const full = cluster.nodes.find(node => ownerOf(Number(node.cli('cluster', 'keyslot', first).trim())) !== node.cli('cluster', 'myid').trim())!
  full.cli('config', 'set', 'maxmemory', '1')
  try {
    await assert.rejects(openStore('cut'), /OOM/)
  } finally {
    full.cli('config', 'set', 'maxmemory', '0')
  }
  assert.match(cluster.nodes[0]!.cli('-c', 'get', first).trim(), /^new:[0-9a-f-]{36}$/, 'the first marker says the marking is unfinished')

  const store = await openStore('cut')
  assert.deepEqual({ ...store.marker, id: undefined }, { id: undefined, created: true, probed: 16384, missing: 0, other: 0 }, 'finished, every marker read back')
  assert.equal(cluster.nodes[0]!.cli('-c', 'get', first).trim(), store.marker.id)
  const held = cluster.nodes.reduce((sum, node) => sum + node.cli('--scan', '--pattern', 'cut:*:store').trim().split('\n').filter(Boolean).length, 0)
  assert.equal(held, 16384, 'every slot marked')
  for (let id = 1; id <= 30; id++) await store.put(grantsFor(id, `acme/p${id}`))
  for (let id = 1; id <= 30; id++) assert.equal((await store.get(id))?.projectPath, `acme/p${id}`)
  assert.deepEqual((await openStore('cut')).marker, { id: store.marker.id, created: false, probed: 3, missing: 0, other: 0 })
})

test('redis cluster: once a replica found the store lost everything, a start refuses it too rather than mark it anew', async () => {
  const store = await openStore('all')
  for (let id = 1; id <= 5; id++) await store.put(grantsFor(id, `acme/p${id}`))
  for (const node of cluster.nodes) node.cli('flushall')
  const id = [1, 2, 3, 4, 5].find(id => store.markerKeys.of(store.keys.grants(id)) !== store.markerKeys.all[0])!
  await assert.rejects(store.get(id), GrantsStoreLostError)
  // A replica started now (a rollout, a scale-up) would have found no marker and decided on the
  // empty store; the trace the read left on the first marker tells it the store was lost.
  const later = await openStore('all')
  assert.deepEqual(later.marker, { id: store.marker.id, created: false, probed: 3, missing: 3, other: 0 })
  await assert.rejects(later.get(id), GrantsStoreLostError)
  assert.deepEqual(await later.acceptLoss(), { id: store.marker.id, written: 16384, other: 0 })
  assert.equal(await store.get(id), null, 'accepted: decided on what the store holds now')
})

test('redis cluster: accept-store-loss refuses a --marker other than the id the store holds, which would leave the lost slots another store\'s for good', async () => {
  // The command's prefix is the default one.
  const store = await openStore('jtg')
  for (let id = 1; id <= 30; id++) await store.put(grantsFor(id, `acme/p${id}`))
  const node = cluster.nodes[1]!
  const gone = node.cli('--scan', '--pattern', 'jtg:{p:*}:grants').trim().split('\n').filter(Boolean).map(key => Number(/\{p:(\d+)\}/.exec(key)![1]))
  node.cli('flushall')
  await assert.rejects(store.get(gone[0]!), GrantsStoreLostError)
  const env = { GATE_REDIS_CLUSTER_NODES: cluster.seeds.map(n => `${n.host}:${n.port}`).join(',') }
  const out: string[] = []
  const err: string[] = []
  const io = { out: (text: string) => { out.push(text) }, err: (text: string) => { err.push(text) } }

  // An id from an older log line: written into the absent markers, it made their slots another
  // store's, which no restart and no later accept-store-loss (SET NX) undid.
  assert.equal(await runAcceptStoreLoss({ env, marker: 'b1e4d2c0-0000-4000-8000-000000000000', ...io }), 1)
  assert.match(err.join(''), new RegExp(`the store's markers hold ${store.marker.id!}, not b1e4d2c0-0000-4000-8000-000000000000: .*run it without --marker`))
  await assert.rejects(store.get(gone[0]!), GrantsStoreLostError)
  assert.equal(await runAcceptStoreLoss({ env, ...io }), 0)
  assert.match(out.join(''), new RegExp(`^store ${store.marker.id!}: \\d+ of 16384 marker\\(s\\) written back\n$`))
  for (const id of gone) assert.equal(await store.get(id), null, 'accepted: what the lost master held is gone')
  assert.deepEqual((await openStore('jtg')).marker, { id: store.marker.id, created: false, probed: 3, missing: 0, other: 0 })
})

test('redis cluster: when its node goes away the subscription moves to another and the cache flushes', async () => {
  const store = await openStore('rotate')
  const cache = createGrantCache({ store, ttlMs: 60_000 })
  after(() => cache.close())
  const before = (await store.health()).subscribedTo
  const node = cluster.nodes.find(n => `127.0.0.1:${n.port}` === before)
  assert.ok(node !== undefined, `subscribed to a cluster node (${before})`)
  await node.kill()
  await eventually(() => cache.stats().resets >= 1, { message: 'the new subscription reported a reset' })
  const health = await store.health()
  assert.notEqual(health.subscribedTo, before)
  assert.equal(health.subscribed, true)
  // The node comes back with its cluster config, so later tests see a whole cluster again.
  await node.restart()
})
