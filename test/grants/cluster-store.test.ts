import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRedisStore, type RedisGrantStore } from '../../src/grants/redis-store.ts'
import { createGrantCache } from '../../src/grants/cache.ts'
import { startRedisCluster } from '../helpers/redis.ts'
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
