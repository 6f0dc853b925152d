// Finding: a Redis store that lost everything while no replica read it (a node restarted with the
// gate's pods and Redis on it, Redis without persistence) held neither a marker nor the trace a
// running replica leaves: the next start took it for a new store, marked it and decided on
// nothing configured. With GATE_UNKNOWN_PROJECT=allow every job token passed to a project whose
// allowlist had refused it; under the default, allowlist limits and package rules were gone.
//
// GATE_REDIS_STORE_ID names the store (the id its first start logs): a start on a store holding
// no marker, or another id, then refuses it as a loss (GRANTS_STORE_LOST) instead of marking it,
// until the data is restored or an operator accepts the store as it is.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRedisStore, type RedisGrantStore } from '../../src/grants/redis-store.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { runAcceptStoreLoss } from '../../src/cli/accept-store-loss.ts'
import { createStoreFromConfig } from '../../src/gate/deps.ts'
import { ConfigError, loadConfig } from '../../src/config.ts'
import { startStoreGate } from '../helpers/store-gate.ts'
import { startRedis } from '../helpers/redis.ts'
import { eventually } from '../helpers/eventually.ts'
import { TOKENS } from '../helpers/gate.ts'

const upload = '/api/v4/projects/200/packages/generic/x/1.0.0/x.bin'
const KIT = { id: 200, pathWithNamespace: 'acme/kit', namespace: { id: 10, kind: 'group' as const, fullPath: 'acme', parentId: null } }
const GATE_ENV = { GATE_UNKNOWN_PROJECT: 'allow', GATE_GRANT_CACHE_TTL_MS: '0', GATE_GRANT_STALE_WINDOW_MS: '0' }

async function put (url: string): Promise<{ status: number, code: unknown }> {
  const res = await fetch(url + upload, { method: 'PUT', headers: { 'job-token': TOKENS.app }, body: 'x' })
  return { status: res.status, code: (await res.json() as Record<string, unknown>).code }
}

async function storeOf (env: Record<string, string>): Promise<RedisGrantStore> {
  return await createStoreFromConfig(loadConfig(env)) as RedisGrantStore
}

function silent (): { out: (text: string) => void, err: (text: string) => void, said: string[] } {
  const said: string[] = []
  return { out: text => { said.push(text) }, err: text => { said.push(text) }, said }
}

/** A store whose allowlist of acme/kit (project 200) lets no other project's jobs in, then closed: no replica reads it. */
async function configuredStore (url: string): Promise<string> {
  const store = await createRedisStore({ url })
  await store.put(validateProjectGrants({ projectId: 200, projectPath: 'acme/kit', inboundEnabled: true, entries: [] }, { settings: createInstanceSettings() }))
  const id = store.marker.id!
  await store.close()
  return id
}

test('GATE_REDIS_STORE_ID: a start on a store that lost everything while no replica read it refuses it, rather than take it for a new one', async t => {
  const redis = await startRedis(t)
  const id = await configuredStore(redis.url)
  redis.cli('flushall')

  const env = { GATE_REDIS_URL: redis.url, GATE_REDIS_STORE_ID: id }
  const store = await storeOf(env)
  t.after(() => store.close())
  assert.deepEqual(store.marker, { id, created: false, probed: 1, missing: 1, other: 0 })
  assert.equal(redis.cli('exists', 'jtg:store').trim(), '0', 'the start marked nothing')
  const g = await startStoreGate(t, store, { projects: [KIT], env: GATE_ENV })
  assert.deepEqual(await put(g.url), { status: 503, code: 'GRANTS_STORE_LOST' })
  assert.deepEqual(g.seen, [], 'nothing reached GitLab')
  assert.equal((await store.health()).ok, false, 'readiness refuses')
  // The refused read left the trace of the loss: a replica started without the setting refuses too.
  assert.equal(redis.cli('get', 'jtg:store').trim(), `lost:${id}`)
  const unnamed = await createRedisStore({ url: redis.url })
  t.after(() => unnamed.close())
  assert.deepEqual(unnamed.marker, { id, created: false, probed: 1, missing: 1, other: 0 })

  // Accepted as it is (the id from the setting): decided on what the store holds now.
  const io = silent()
  assert.equal(await runAcceptStoreLoss({ env, ...io }), 0, io.said.join(''))
  await eventually(async () => (await put(g.url)).status === 200, { message: 'decided again once accepted' })

  // Without the setting a start cannot tell a new store from this one: it marks it anew (the
  // limit the setting closes).
  redis.cli('flushall')
  const fresh = await createRedisStore({ url: redis.url })
  t.after(() => fresh.close())
  assert.equal(fresh.marker.created, true)
  assert.notEqual(fresh.marker.id, id)
})

test('GATE_REDIS_STORE_ID: a store marked with another id (anew after a loss, or another store) is refused, and accept-store-loss writes no other id', async t => {
  const redis = await startRedis(t)
  const id = await configuredStore(redis.url)
  redis.cli('flushall')
  // A replica without the setting took the lost store for a new one.
  const remarked = await createRedisStore({ url: redis.url })
  t.after(() => remarked.close())
  assert.equal(remarked.marker.created, true)

  const env = { GATE_REDIS_URL: redis.url, GATE_REDIS_STORE_ID: id }
  const store = await storeOf(env)
  t.after(() => store.close())
  assert.deepEqual(store.marker, { id, created: false, probed: 1, missing: 0, other: 1 })
  const g = await startStoreGate(t, store, { projects: [KIT], env: GATE_ENV })
  assert.deepEqual(await put(g.url), { status: 503, code: 'GRANTS_STORE_LOST' })
  assert.match((await store.health()).detail ?? '', new RegExp(`holds ${remarked.marker.id!}, not ${id} \\(GATE_REDIS_STORE_ID\\)`))

  const io = silent()
  assert.equal(await runAcceptStoreLoss({ env, marker: remarked.marker.id!, ...io }), 1)
  assert.match(io.said.join(''), new RegExp(`GATE_REDIS_STORE_ID names ${id}, not ${remarked.marker.id!}`))
  assert.equal(redis.cli('get', 'jtg:store').trim(), remarked.marker.id, 'the marker is left as it was')
})

test('GATE_REDIS_STORE_ID on a new store: refused until accept-store-loss marks it with that id', async t => {
  const redis = await startRedis(t)
  const env = { GATE_REDIS_URL: redis.url, GATE_REDIS_STORE_ID: 'store-1' }
  const store = await storeOf(env)
  t.after(() => store.close())
  const g = await startStoreGate(t, store, { projects: [KIT], env: GATE_ENV })
  assert.deepEqual(await put(g.url), { status: 503, code: 'GRANTS_STORE_LOST' })
  const io = silent()
  assert.equal(await runAcceptStoreLoss({ env, ...io }), 0, io.said.join(''))
  assert.equal(redis.cli('get', 'jtg:store').trim(), 'store-1')
  await eventually(async () => (await put(g.url)).status === 200, { message: 'decided once marked' })
  // A later start with the setting finds its id and decides.
  const next = await storeOf(env)
  t.after(() => next.close())
  assert.deepEqual(next.marker, { id: 'store-1', created: false, probed: 1, missing: 0, other: 0 })
})

test('GATE_REDIS_STORE_ID must be an id as a start logs it, and needs a Redis store', () => {
  for (const value of ['lost:abc', 'new:abc', ' abc', 'a b', 'x'.repeat(129)]) {
    assert.throws(() => loadConfig({ GATE_REDIS_URL: 'redis://127.0.0.1:1/0', GATE_REDIS_STORE_ID: value }), (err: Error) => err instanceof ConfigError && /GATE_REDIS_STORE_ID must be/.test(err.message), value)
  }
  assert.throws(() => loadConfig({ GATE_REDIS_URL: 'redis://127.0.0.1:1/0', GATE_REDIS_STORE_ID: '' }), /GATE_REDIS_STORE_ID is set but empty/)
  assert.throws(() => loadConfig({ GATE_REDIS_STORE_ID: 'abc' }), /GATE_REDIS_STORE_ID needs a Redis store/)
  assert.equal(loadConfig({ GATE_REDIS_URL: 'redis://127.0.0.1:1/0', GATE_REDIS_STORE_ID: '0b6c3c1e-8a7f-4d2b-9a51-3f0e2d6c9b17' }).redisStoreId, '0b6c3c1e-8a7f-4d2b-9a51-3f0e2d6c9b17')
})
