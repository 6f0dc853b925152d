import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRedisStore, redisKeys, type RedisGrantStore } from '../../src/grants/redis-store.ts'
import { GrantsStoreUnavailableError } from '../../src/grants/errors.ts'
import { REFUSED_PORT } from '../helpers/ports.ts'
import { startRedis } from '../helpers/redis.ts'
import { grantsFor, storeContract, type StoreOptions } from './store-contract.ts'

const redis = await startRedis({ after })
let prefixes = 0

async function openStore (prefix: string, options: StoreOptions = {}): Promise<RedisGrantStore> {
  const store = await createRedisStore({ ...options, url: redis.url, keyPrefix: prefix })
  after(() => store.close())
  return store
}

// Each test gets its own key prefix (and channel) on the one private server.
storeContract('redis', async (options) => {
  const prefix = `t${++prefixes}`
  return { writer: await openStore(prefix, options), reader: await openStore(prefix, options) }
})

test('redis: keys follow the documented schema with per-project hash tags', async () => {
  const store = await openStore('schema')
  await store.put(grantsFor(77, 'Acme/Widget'))
  const keys = redis.cli('--scan', '--pattern', 'schema:*').trim().split('\n').sort()
  assert.deepEqual(keys, ['schema:store', 'schema:{p:77}:grants', 'schema:{path:acme/widget}:id'])
  assert.deepEqual(redisKeys('schema').grants(77), 'schema:{p:77}:grants')
  assert.equal(redis.cli('hget', 'schema:{p:77}:grants', 'version').trim(), '1')
  assert.equal(redis.cli('hget', 'schema:{p:77}:grants', 'path').trim(), 'acme/widget')
  assert.equal(redis.cli('get', 'schema:{path:acme/widget}:id').trim(), '77')
  assert.equal(JSON.parse(redis.cli('hget', 'schema:{p:77}:grants', 'doc')).projectPath, 'Acme/Widget')
})

test('redis: a stale path hint whose project moved away resolves to nothing', async () => {
  const store = await openStore('hint')
  await store.put(grantsFor(78, 'acme/moved'))
  // As if a rename's clean-up never ran: the hint still names 78, whose record says otherwise.
  redis.cli('hset', 'hint:{p:78}:grants', 'path', 'acme/elsewhere')
  assert.equal(await store.resolvePath('acme/moved'), null)
})

test('redis: an unreadable stored document fails closed instead of guessing', async () => {
  const store = await openStore('corrupt')
  await store.put(grantsFor(79, 'acme/corrupt'))
  redis.cli('hset', 'corrupt:{p:79}:grants', 'doc', '{"projectId":79')
  await assert.rejects(store.get(79), GrantsStoreUnavailableError)
  redis.cli('hset', 'corrupt:{p:79}:grants', 'doc', JSON.stringify(grantsFor(80, 'acme/other')))
  await assert.rejects(store.get(79), /holds project 80/)
})

test('redis: start-up fails with GRANTS_STORE_UNAVAILABLE when Redis cannot be reached', async () => {
  const started = Date.now()
  await assert.rejects(createRedisStore({ url: `redis://127.0.0.1:${REFUSED_PORT}`, connectTimeoutMs: 300 }), (err: unknown) =>
    err instanceof GrantsStoreUnavailableError && err.code === 'GRANTS_STORE_UNAVAILABLE' && err.status === 503)
  assert.ok(Date.now() - started < 3000, 'gives up after connectTimeoutMs')
})

test('redis: exactly one of url, sentinels and cluster must be given', async () => {
  await assert.rejects(createRedisStore({}), /exactly one/)
  await assert.rejects(createRedisStore({ url: redis.url, cluster: [{ host: '127.0.0.1', port: 1 }] }), /exactly one/)
  await assert.rejects(createRedisStore({ sentinels: [{ host: '127.0.0.1', port: 1 }] }), /sentinelName/)
})

test('redis: health reports latency and the subscription', async () => {
  const store = await openStore('health')
  const health = await store.health()
  assert.equal(health.ok, true)
  assert.equal(health.mode, 'standalone')
  assert.equal(health.subscribed, true)
  assert.ok(typeof health.latencyMs === 'number' && health.latencyMs >= 0)
})
