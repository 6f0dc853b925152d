// Finding: a value of a size no document of the gate has (Redis takes up to 512 MB), written into
// a project's grants key by another tool or by hand, was sent whole to the gate at each read of
// that project. The store's one command connection spent longer than the command timeout
// carrying it, so every read queued behind it timed out: every job-token decision, of every
// project, answered 503, and went on doing so after the value was removed, until the bytes already
// asked for had drained. The read scripts now measure each value first (HSTRLEN, STRLEN) and
// refuse one past the bound in Redis, naming the key: that project's reads fail closed (503), the
// others go on. A marker of that size is read as its size, and refused as another store's.
// The usage report's reads (HGETALL, HGET of `d`) and the start's read of the markers were not
// measured: one such value held the connection the same way. They are now (MEMORY USAGE, HSTRLEN,
// STRLEN), in Redis, before anything is sent.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { startRedis } from '../helpers/redis.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { adminGate, ADMIN } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { createRedisStore } from '../../src/grants/redis-store.ts'
import { GrantsStoreLostError, GrantsStoreUnavailableError } from '../../src/grants/errors.ts'

// Past the bound (16 MiB), and large enough to hold the connection past the command timeout.
const BIG = 64 * 1024 * 1024
// Past a marker's bound.
const LONG = 1024 * 1024

test('an oversized value in one project\'s key fails that project\'s reads, not every read', async t => {
  const redis = await startRedis(t)
  // No cache: every decision reads the store.
  const g = await startTestGate(t, { GATE_REDIS_URL: redis.url, GATE_GRANT_CACHE_TTL_MS: '0', GATE_GRANT_STALE_WINDOW_MS: '0' })
  const writer = new Redis(redis.url)
  t.after(() => writer.disconnect())
  const job = { 'job-token': TOKENS.app }
  const registry = async (): Promise<number> => (await send(g.url, 'GET', '/api/v4/projects/700/packages', job)).status
  assert.equal(await registry(), 403, 'acme/registry lists only the other group')

  await writer.hset('jtg:{p:200}:grants', 'doc', Buffer.alloc(BIG, 'x'))
  for (let i = 0; i < 5; i++) {
    const [lib, other] = await Promise.all([send(g.url, 'GET', '/api/v4/projects/200/packages', job), registry()])
    assert.equal(lib.status, 503)
    assert.equal(lib.json().code, 'GRANTS_STORE_UNAVAILABLE')
    assert.equal(other, 403, 'another project\'s decision is made as before')
  }
  await assert.rejects(g.store.get(200), (err: unknown) => err instanceof GrantsStoreUnavailableError && /jtg:\{p:200\}:grants holds a doc of 67108864 bytes/.test(err.message))

  // The path index too.
  await writer.set('jtg:{path:acme/lib}:id', Buffer.alloc(17 * 1024 * 1024, '1'))
  await assert.rejects(g.store.resolvePath('acme/lib'), (err: unknown) => err instanceof GrantsStoreUnavailableError && /jtg:\{path:acme\/lib\}:id holds 17825792 bytes/.test(err.message))
  assert.equal(await registry(), 403)
})

test('an oversized store marker is refused as another store\'s, without reading it whole', async t => {
  const redis = await startRedis(t)
  const store = await createRedisStore({ url: redis.url })
  t.after(() => store.close())
  const writer = new Redis(redis.url)
  t.after(() => writer.disconnect())
  await writer.set('jtg:store', Buffer.concat([Buffer.from(store.marker.id!), Buffer.alloc(LONG, 'x')]))
  await assert.rejects(store.get(1), (err: unknown) => err instanceof GrantsStoreLostError && /holds a value of 1048612 bytes, not /.test(err.message))
  assert.match((await store.health()).detail ?? '', /1048612 bytes/)
})

/** A gate on a private Redis without a grant cache, a writer beside it, and acme/registry's decision (a 403). */
async function plantable (t: import('node:test').TestContext): Promise<{ g: Awaited<ReturnType<typeof adminGate>>, writer: Redis, registry: () => Promise<number> }> {
  const redis = await startRedis(t)
  const g = await adminGate(t, { GATE_REDIS_URL: redis.url, GATE_GRANT_CACHE_TTL_MS: '0', GATE_GRANT_STALE_WINDOW_MS: '0' })
  const writer = new Redis(redis.url)
  t.after(() => writer.disconnect())
  const registry = async (): Promise<number> => (await send(g.url, 'GET', '/api/v4/projects/700/packages', { 'job-token': TOKENS.app })).status
  assert.equal(await registry(), 403, 'acme/registry lists only the other group')
  return { g, writer, registry }
}

test('an oversized usage hash fails that usage report, not every read', async t => {
  const { g, writer, registry } = await plantable(t)
  // Four days of the report's thirty: past the command timeout to carry, read whole.
  const keys = [0, 1, 2, 3].map(n => `jtg:{p:200}:usage:${new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10)}`)
  for (const k of keys) await writer.hset(k, 'j:100', Buffer.alloc(BIG, 'x'))
  const key = keys[0]!
  for (let i = 0; i < 3; i++) {
    const [report, other] = await Promise.all([send(g.url, 'GET', '/api/v4/projects/200/job_token_scope/usage', { 'private-token': ADMIN }), registry()])
    assert.equal(report.status, 503)
    assert.equal(report.json().code, 'GRANTS_STORE_UNAVAILABLE')
    assert.equal(other, 403, 'a decision is made as before')
  }
  const today = [key.slice(-10)]
  await assert.rejects(g.store.readUsage!(200, today), (err: unknown) => err instanceof GrantsStoreUnavailableError && err.message.includes(`${key} holds `) && /holds \d{8,} bytes, more than the gate reads/.test(err.message))
  // The count of what was not recorded, read on its own, too.
  await writer.hset(key, 'd', Buffer.alloc(BIG, '1'))
  await assert.rejects(g.store.readDroppedUsage!(200, today), (err: unknown) => err instanceof GrantsStoreUnavailableError && err.message.includes(`${key} holds a d of ${BIG} bytes`))
  assert.equal(await registry(), 403)
})

test('an oversized store marker fails the start, naming it, without reading it whole', async t => {
  const redis = await startRedis(t)
  const writer = new Redis(redis.url)
  t.after(() => writer.disconnect())
  await writer.set('jtg:store', Buffer.alloc(BIG, 'x'))
  await assert.rejects(createRedisStore({ url: redis.url }), (err: unknown) => err instanceof GrantsStoreUnavailableError && err.message.includes(`jtg:store holds ${BIG} bytes`))
  // Past a marker's length (an id is at most 128 characters) but small: refused all the same, not taken for an id.
  await writer.set('jtg:store', Buffer.alloc(257, 'x'))
  await assert.rejects(createRedisStore({ url: redis.url }), (err: unknown) => err instanceof GrantsStoreUnavailableError && err.message.includes('jtg:store holds 257 bytes, more than the gate reads (256)'))
})

// A write's script returned the path its record held, and published it to every replica, whole:
// a path of a size no document has, planted in the record, was sent back over the store's one
// command connection and to every replica's subscriber at each configuration change of that
// project. The write is refused now, in Redis, naming the key, with nothing written.
test('an oversized path in a project\'s record refuses its writes, without sending it back or publishing it', async t => {
  const { g, writer, registry } = await plantable(t)
  await writer.hset('jtg:{p:200}:grants', 'path', Buffer.alloc(BIG, 'x'))
  const version = await g.store.version(200)
  const headers = { 'content-type': 'application/json', 'private-token': ADMIN }
  for (let i = 0; i < 3; i++) {
    const [patch, other] = await Promise.all([
      send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', headers, JSON.stringify({ package_registry: { maven: { read: true } } })),
      registry()
    ])
    assert.equal(patch.status, 503, patch.text)
    assert.equal(patch.json().code, 'GRANTS_STORE_UNAVAILABLE')
    assert.equal(other, 403, 'a decision is made as before')
  }
  assert.equal(await g.store.version(200), version, 'nothing was written')
  assert.ok(g.logs.some(l => /jtg:\{p:200\}:grants holds a path of 67108864 bytes/.test(JSON.stringify(l))), 'the log names the key and the size')
  await assert.rejects(g.store.delete(200), (err: unknown) => err instanceof GrantsStoreUnavailableError && err.unwritten && /holds a path of 67108864 bytes/.test(err.message))
})

// The write scripts read a record's `version` into Lua to check it is a whole number: one of a
// size no version has, planted there, was copied whole inside Redis at each write of that project
// (seconds for 64 MiB), and Redis answered nobody meanwhile. It is measured first now.
test('an oversized version in a project\'s record refuses its writes without Redis copying it', async t => {
  const { g, writer, registry } = await plantable(t)
  await writer.hset('jtg:{p:200}:grants', 'version', Buffer.alloc(BIG, '7'))
  const lib = { projectId: 200, projectPath: 'acme/lib', inboundEnabled: true, entries: [] }
  for (let i = 0; i < 3; i++) {
    let writing = true
    const write = g.store.put(lib).then(() => null, (err: unknown) => err).finally(() => { writing = false })
    const decisions: number[] = []
    while (writing || decisions.length < 2) {
      decisions.push(await registry())
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    const refused = await write
    assert.ok(refused instanceof GrantsStoreUnavailableError && refused.unwritten, String(refused))
    assert.match(refused.message, /jtg:\{p:200\}:grants holds a version of 67108864 bytes/)
    assert.deepEqual(decisions, decisions.map(() => 403), 'decisions are made as before')
  }
})
