// The Redis store's marker (src/grants/redis-marker.ts): what a start writes and finds, and what
// every read and write does once the marker of its slot is gone or another store's. The gate's
// answer (503 GRANTS_STORE_LOST) and the operator's command are in
// test/security/redis-data-loss.test.ts; a Cluster's per-slot markers in cluster-store.slow.ts.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRedisStore, type RedisGrantStore } from '../../src/grants/redis-store.ts'
import { GrantsStoreLostError } from '../../src/grants/errors.ts'
import { validateNamespaceSettings } from '../../src/grants/model.ts'
import { startRedis } from '../helpers/redis.ts'
import { grantsFor } from './store-contract.ts'
import { Redis } from 'ioredis'
import { fillMarkers, LOST, markerKeys } from '../../src/grants/redis-marker.ts'

const redis = await startRedis({ after })
let prefixes = 0

async function openStore (prefix: string): Promise<RedisGrantStore> {
  const store = await createRedisStore({ url: redis.url, keyPrefix: prefix })
  after(() => store.close())
  return store
}

const lost = (pattern: RegExp) => (err: unknown): boolean =>
  err instanceof GrantsStoreLostError && err.code === 'GRANTS_STORE_LOST' && err.status === 503 && pattern.test(err.message)

test('a start marks a store that holds no marker; later starts take its id', async () => {
  const prefix = `mark${++prefixes}`
  const first = await openStore(prefix)
  assert.equal(first.marker.created, true)
  assert.match(first.marker.id ?? '', /^[0-9a-f-]{36}$/)
  assert.equal(redis.cli('get', `${prefix}:store`).trim(), first.marker.id)
  const second = await openStore(prefix)
  assert.deepEqual(second.marker, { id: first.marker.id, created: false, probed: 1, missing: 0, other: 0 })
  assert.deepEqual(first.markerKeys.all, [`${prefix}:store`])
})

test('with the marker gone, every read that decides and every write is refused, and nothing is written', async () => {
  const prefix = `gone${++prefixes}`
  const store = await openStore(prefix)
  await store.put(grantsFor(5, 'acme/five'))
  const namespace = validateNamespaceSettings({ namespacePath: 'acme', jobTokenPoliciesEnabled: true })
  await store.putNamespace(namespace)
  redis.cli('del', `${prefix}:store`)

  const gone = lost(new RegExp(`the store marker ${prefix}:store is gone`))
  await assert.rejects(store.get(5), gone)
  await assert.rejects(store.resolvePath('acme/five'), gone)
  await assert.rejects(store.version(5), gone)
  await assert.rejects(store.getNamespace('acme'), gone)
  await assert.rejects(store.put(grantsFor(5, 'acme/five-renamed')), gone)
  await assert.rejects(store.put(grantsFor(6, 'acme/six')), gone)
  await assert.rejects(store.delete(5), gone)
  await assert.rejects(store.putNamespace(namespace), gone)
  await assert.rejects(store.deleteNamespace('acme'), gone)
  assert.equal((await store.health()).ok, false)
  assert.equal(redis.cli('hget', `${prefix}:{p:5}:grants`, 'path').trim(), 'acme/five', 'the refused writes changed nothing')
  assert.equal(redis.cli('exists', `${prefix}:{p:6}:grants`).trim(), '0')
  assert.equal(redis.cli('hget', `${prefix}:{ns:acme}:settings`, 'version').trim(), '1')

  // Accepted (here the data was all there): read and written again, with the same store object.
  assert.deepEqual(await store.acceptLoss(), { id: store.marker.id, written: 1, other: 0 })
  assert.equal((await store.get(5))?.projectPath, 'acme/five')
  assert.equal(await store.resolvePath('acme/five'), 5)
  assert.equal(await store.delete(5), true)
  assert.equal((await store.health()).ok, true)
})

test('a marker written by a later start (after a loss) is another store: refused until this replica restarts', async () => {
  const prefix = `other${++prefixes}`
  const before = await openStore(prefix)
  await before.put(grantsFor(7, 'acme/seven'))
  for (const key of redis.cli('--scan', '--pattern', `${prefix}:*`).trim().split('\n')) redis.cli('del', key)
  const since = await openStore(prefix)
  assert.equal(since.marker.created, true)
  assert.notEqual(since.marker.id, before.marker.id)
  assert.equal(await since.get(7), null, 'the replica started since decides on the store as it is')
  await assert.rejects(before.get(7), lost(new RegExp(`holds ${since.marker.id!}, not ${before.marker.id!}: .*restart this replica`)))
  assert.deepEqual(await before.acceptLoss(), { id: before.marker.id, written: 0, other: 1 }, 'another id is never overwritten')
})

test('accepting a loss counts the markers it wrote, though a batch timed out after its writes and ran again', async () => {
  // A Cluster's 16,384 markers, here on one server. A batch whose answer timed out is run again,
  // and its script then finds its own markers written: counted from its answers, they were not.
  const keys = markerKeys(`fill${++prefixes}`, true)
  const id = 'c0ffee00-0000-4000-8000-000000000001'
  redis.cli('set', keys.all[0]!, LOST + id)
  redis.cli('set', keys.all[1]!, id)
  redis.cli('set', keys.all[2]!, 'another-store-id')
  const client = new Redis(redis.url)
  after(() => client.disconnect())
  const pipeline = client.pipeline.bind(client)
  let evals = 0
  client.pipeline = ((commands: unknown[][]) => {
    const p = pipeline(commands as never)
    if (commands[0]?.[0] !== 'evalsha' || ++evals !== 1) return p
    const exec = p.exec.bind(p)
    p.exec = (async () => {
      await exec()
      throw new Error('Command timed out')
    }) as typeof p.exec
    return p
  }) as typeof client.pipeline
  assert.deepEqual(await fillMarkers(client, keys, id, 10_000), { written: 16_384 - 2, other: 1 })
  assert.equal(evals > 1, true, 'the first batch was run again')
  assert.equal(redis.cli('get', keys.all[0]!).trim(), id)
  assert.equal(redis.cli('get', keys.all[2]!).trim(), 'another-store-id')
})
