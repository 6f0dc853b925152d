// The cache against a scripted store and a hand-driven clock: every timing rule is checked
// exactly, without sleeping. The real-Redis behaviour is in replicas.test.ts and outage.test.ts.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createGrantCache, type GrantCacheOptions } from '../../src/grants/cache.ts'
import { GrantsStoreUnavailableError } from '../../src/grants/errors.ts'
import { createListeners, type GrantStore, type InvalidationEvent } from '../../src/grants/store.ts'
import type { StoredGrants, StoredNamespaceSettings } from '../../src/grants/model.ts'
import { grantsFor } from './store-contract.ts'
import { eventually } from '../helpers/eventually.ts'

interface FakeStore extends GrantStore {
  data: Map<number, StoredGrants>
  paths: Map<string, number>
  namespaces: Map<string, StoredNamespaceSettings>
  calls: { get: number, resolvePath: number, getNamespace: number }
  /** When set, reads reject with it. */
  failure: Error | null
  /** When set, reads wait for release() before answering. */
  hold: boolean
  /** Reads waiting for release(). */
  held (): number
  release (): void
  emit (event: InvalidationEvent): void
  listenerCount (): number
}

function fakeStore (): FakeStore {
  const listeners = createListeners()
  let count = 0
  let waiting: Array<() => void> = []
  const store: FakeStore = {
    kind: 'memory',
    data: new Map(),
    paths: new Map(),
    namespaces: new Map(),
    calls: { get: 0, resolvePath: 0, getNamespace: 0 },
    failure: null,
    hold: false,
    held: () => waiting.length,
    release () { const w = waiting; waiting = []; for (const wake of w) wake() },
    emit: event => listeners.emit(event),
    listenerCount: () => count,
    async get (id) {
      store.calls.get++
      // The answer is what the store held when asked, however late it arrives.
      const value = store.data.get(id) ?? null
      if (store.hold) await new Promise<void>(resolve => waiting.push(resolve))
      if (store.failure !== null) throw store.failure
      return value
    },
    async resolvePath (path) {
      store.calls.resolvePath++
      if (store.failure !== null) throw store.failure
      return store.paths.get(path) ?? null
    },
    async put () { throw new Error('not used') },
    async delete () { throw new Error('not used') },
    async version () { return 0 },
    async appendAudit () { throw new Error('not used') },
    async readAudit () { throw new Error('not used') },
    async getNamespace (path) {
      store.calls.getNamespace++
      if (store.failure !== null) throw store.failure
      return store.namespaces.get(path) ?? null
    },
    async putNamespace () { throw new Error('not used') },
    async deleteNamespace () { throw new Error('not used') },
    async appendNamespaceAudit () { throw new Error('not used') },
    async readNamespaceAudit () { throw new Error('not used') },
    subscribe (listener) {
      count++
      const off = listeners.add(listener)
      return () => { count--; off() }
    },
    async health () { return { ok: true, kind: 'memory', mode: 'fake', subscribed: true } },
    async close () {}
  }
  return store
}

function setup (options: Partial<GrantCacheOptions> = {}): { store: FakeStore, clock: { t: number }, cache: ReturnType<typeof createGrantCache> } {
  const store = fakeStore()
  const clock = { t: 1000 }
  const cache = createGrantCache({ store, ttlMs: 10_000, staleWindowMs: 30_000, now: () => clock.t, wallClock: () => 5_000_000, ...options })
  return { store, clock, cache }
}

const stored = (id: number, version = 1, path = `acme/p${id}`): StoredGrants => ({ ...grantsFor(id, path), version })
const invalidation = (projectId: number, version: number, paths: string[] = [], publishedAt = 4_999_990): InvalidationEvent =>
  ({ kind: 'project', projectId, version, paths, publishedAt })

test('cache: a fresh entry is served without asking the store, an expired one is refetched', async () => {
  const { store, clock, cache } = setup()
  store.data.set(1, stored(1))
  assert.equal((await cache.get(1))?.version, 1)
  clock.t += 9_999
  assert.equal((await cache.get(1))?.version, 1)
  assert.equal(store.calls.get, 1)
  store.data.set(1, stored(1, 2))
  clock.t += 1
  assert.equal((await cache.get(1))?.version, 2, 'at exactly ttlMs the entry is no longer fresh')
  assert.equal(store.calls.get, 2)
  const stats = cache.stats()
  assert.equal(stats.hits, 1)
  assert.equal(stats.misses, 2)
})

test('cache: unknown projects are cached as negative entries with their own TTL', async () => {
  const { store, clock, cache } = setup({ negativeTtlMs: 2_000 })
  assert.equal(await cache.get(9), null)
  assert.equal(await cache.get(9), null)
  assert.equal(store.calls.get, 1)
  assert.equal(cache.stats().negativeHits, 1)
  clock.t += 2_000
  store.data.set(9, stored(9))
  assert.equal((await cache.get(9))?.projectId, 9)
  assert.equal(store.calls.get, 2)
})

test('cache: get() answers a fresh entry without a promise, and a promise where it must ask the store', async () => {
  const { store, clock, cache } = setup({ negativeTtlMs: 2_000 })
  store.data.set(1, stored(1))
  const first = cache.get(1)
  assert.ok(first instanceof Promise, 'never read')
  assert.equal((await first)?.version, 1)
  assert.equal((cache.get(1) as StoredGrants | null)?.version, 1, 'fresh: the value itself')
  assert.equal(await cache.get(9), null)
  assert.equal(cache.get(9), null, 'an unknown project is a fresh negative entry')
  clock.t += 2_000
  assert.ok(cache.get(9) instanceof Promise, 'past the negative TTL')
  clock.t += 8_000
  assert.ok(cache.get(1) instanceof Promise, 'past the TTL')
  await cache.get(1)
  cache.invalidate(1)
  assert.ok(cache.get(1) instanceof Promise, 'dropped by an invalidation')
  assert.equal(store.calls.get, 5)
  assert.equal(cache.stats().hits, 2)
})

test('cache: concurrent misses for one project make one store call', async () => {
  const { store, cache } = setup()
  store.data.set(1, stored(1))
  store.hold = true
  const all = Promise.all(Array.from({ length: 50 }, () => cache.get(1)))
  await eventually(() => store.held() === 1, { message: 'the one read to reach the store' })
  store.release()
  const results = await all
  assert.equal(store.calls.get, 1)
  assert.ok(results.every(r => r?.version === 1))
  assert.equal(cache.stats().singleFlightWaits, 49)
  // Different projects do not wait for each other.
  store.hold = false
  await Promise.all([cache.get(2), cache.get(3)])
  assert.equal(store.calls.get, 3)
})

test('cache: an invalidation drops the project and the paths it names', async () => {
  const { store, cache } = setup()
  store.data.set(1, stored(1))
  store.paths.set('acme/p1', 1)
  await cache.get(1)
  assert.equal(await cache.resolvePath('Acme/P1'), 1)
  store.data.set(1, stored(1, 2, 'acme/renamed'))
  store.paths.delete('acme/p1')
  store.paths.set('acme/renamed', 1)
  store.emit(invalidation(1, 2, ['acme/renamed', 'acme/p1']))
  assert.equal((await cache.get(1))?.version, 2)
  assert.equal(await cache.resolvePath('acme/p1'), null)
  assert.equal(await cache.resolvePath('acme/renamed'), 1)
  assert.equal(store.calls.get, 2)
  assert.equal(cache.stats().invalidationsReceived, 1)
  assert.equal(cache.stats().lastInvalidationLagMs, 10)
})

test('cache: a read in flight when an invalidation arrives is not cached', async () => {
  const { store, cache } = setup()
  store.data.set(1, stored(1))
  store.hold = true
  const before = cache.get(1)
  await eventually(() => store.held() === 1, { message: 'the first read to reach the store' })
  // The write lands and its message arrives while the old read is still on the wire.
  store.data.set(1, stored(1, 2))
  store.emit(invalidation(1, 2))
  const after = cache.get(1)
  await eventually(() => store.held() === 2, { message: 'the second read to reach the store' })
  store.release()
  store.hold = false
  assert.equal((await before)?.version, 1, 'the request that asked before the write may see the old grants')
  assert.equal((await after)?.version, 2, 'a request after the invalidation does not join the old read')
  assert.equal((await cache.get(1))?.version, 2, 'and the old answer was not cached')
})

test('cache: a reset flushes every project and path', async () => {
  const { store, cache } = setup()
  store.data.set(1, stored(1))
  store.data.set(2, stored(2))
  store.paths.set('acme/p1', 1)
  await cache.get(1)
  await cache.get(2)
  await cache.resolvePath('acme/p1')
  assert.equal(cache.stats().projectEntries, 2)
  store.emit({ kind: 'reset', reason: 'test' })
  assert.equal(cache.stats().projectEntries, 0)
  assert.equal(cache.stats().pathEntries, 0)
  assert.equal(cache.stats().resets, 1)
  await cache.get(1)
  assert.equal(store.calls.get, 3)
})

test('cache: while the subscription is down nothing is fresh; the stale window still covers a failing store; the reset ends it', async () => {
  const { store, clock, cache } = setup()
  store.data.set(1, stored(1))
  store.paths.set('acme/p1', 1)
  const ids = Object.freeze([1])
  await cache.get(1)
  await cache.resolvePath('acme/p1')
  assert.equal(await cache.anyOf(ids, 'k', () => true), true)
  store.emit({ kind: 'lost', reason: 'SUBSCRIBE refused' })
  store.emit({ kind: 'lost', reason: 'refused again' })
  assert.equal(cache.stats().subscriptionLosses, 1, 'one loss, however many causes')
  // A change no message told of is read at once, by every kind of question.
  store.data.set(1, stored(1, 2, 'acme/p1'))
  assert.equal((await cache.get(1))?.version, 2)
  assert.equal((await cache.get(1))?.version, 2)
  assert.equal(store.calls.get, 3)
  await cache.resolvePath('acme/p1')
  assert.equal(store.calls.resolvePath, 2)
  store.data.delete(1)
  assert.equal(await cache.anyOf(ids, 'k', grants => grants !== null), false, 'a listing\'s answer is drawn again')
  // A store that fails meanwhile is met as any outage: the last answer within ttl + staleWindow.
  store.data.set(1, stored(1, 3))
  await cache.get(1)
  store.failure = new GrantsStoreUnavailableError('connection refused')
  clock.t += 39_999
  assert.equal((await cache.get(1))?.version, 3)
  clock.t += 2
  await assert.rejects(async () => await cache.get(1), GrantsStoreUnavailableError)
  // Back: a reset flushes, and answers are fresh again.
  store.failure = null
  store.emit({ kind: 'reset', reason: 'test' })
  const calls = store.calls.get
  await cache.get(1)
  await cache.get(1)
  assert.equal(store.calls.get, calls + 1)
})

test('cache: created while the store\'s subscription is down, it knows', async () => {
  const store = fakeStore()
  store.emit({ kind: 'lost', reason: 'connection closed' })
  const cache = createGrantCache({ store })
  store.data.set(1, stored(1))
  await cache.get(1)
  await cache.get(1)
  assert.equal(store.calls.get, 2)
  store.emit({ kind: 'reset', reason: 'test' })
  await cache.get(1)
  await cache.get(1)
  assert.equal(store.calls.get, 3)
})

test('cache: store down — stale entries for staleWindowMs past their TTL, then fail closed, then recovery', async () => {
  const { store, clock, cache } = setup()
  store.data.set(1, stored(1))
  await cache.get(1)
  store.failure = new GrantsStoreUnavailableError('connection refused')
  clock.t += 5_000
  assert.equal((await cache.get(1))?.version, 1, 'fresh entries need no store')
  clock.t += 5_000
  assert.equal((await cache.get(1))?.version, 1, 'expired: the store fails, the stale entry is served')
  clock.t += 30_000
  assert.equal((await cache.get(1))?.version, 1, 'still inside ttl + staleWindow')
  assert.equal(cache.stats().staleServed, 2)
  clock.t += 1
  await assert.rejects(async () => await cache.get(1), (err: unknown) => err instanceof GrantsStoreUnavailableError && err.code === 'GRANTS_STORE_UNAVAILABLE' && err.status === 503)
  await assert.rejects(async () => await cache.get(2), GrantsStoreUnavailableError, 'a project never cached fails closed at once')
  assert.equal(cache.stats().failClosed, 2)
  store.failure = null
  store.data.set(1, stored(1, 3))
  assert.equal((await cache.get(1))?.version, 3, 'recovers by itself once the store answers')
})

test('cache: an invalidated entry is never served as stale', async () => {
  const { store, clock, cache } = setup()
  store.data.set(1, stored(1))
  await cache.get(1)
  store.emit(invalidation(1, 2))
  store.failure = new Error('ECONNREFUSED')
  clock.t += 1
  await assert.rejects(async () => await cache.get(1), GrantsStoreUnavailableError)
  assert.equal(cache.stats().staleServed, 0)
})

test('cache: negative entries are served stale too, so an outage does not turn unknown into 503 at once', async () => {
  const { store, clock, cache } = setup()
  assert.equal(await cache.get(5), null)
  store.failure = new Error('down')
  clock.t += 20_000
  assert.equal(await cache.get(5), null)
  assert.equal(cache.stats().staleServed, 1)
})

test('cache: a store that does not answer counts as down after loadTimeoutMs', async () => {
  const { store, cache } = setup({ loadTimeoutMs: 30 })
  store.hold = true
  const started = Date.now()
  await assert.rejects(async () => await cache.get(1), /no answer within 30 ms/)
  // The real timer is the behaviour under test; this bound (30x) only detects a hang.
  assert.ok(Date.now() - started < 1000)
  store.release()
})

test('cache: paths are looked up once, case-insensitively, and a non-path never reaches the store', async () => {
  const { store, cache } = setup()
  store.paths.set('acme/app', 4)
  assert.equal(await cache.resolvePath('Acme/App'), 4)
  assert.equal(await cache.resolvePath('ACME/APP'), 4)
  assert.equal(await cache.resolvePath('acme/none'), null)
  assert.equal(await cache.resolvePath('acme/none'), null)
  assert.equal(store.calls.resolvePath, 2)
  assert.equal(await cache.resolvePath('../etc'), null)
  assert.equal(await cache.resolvePath('a{b}/c'), null)
  assert.equal(store.calls.resolvePath, 2)
})

test('cache: size is bounded by maxEntries (least recently used goes first)', async () => {
  const { store, cache } = setup({ maxEntries: 3 })
  for (let id = 1; id <= 4; id++) store.data.set(id, stored(id))
  await cache.get(1); await cache.get(2); await cache.get(3)
  await cache.get(1)
  await cache.get(4)
  assert.equal(cache.stats().projectEntries, 3)
  const calls = store.calls.get
  await cache.get(1)
  assert.equal(store.calls.get, calls, '1 was used recently and stayed')
  await cache.get(2)
  assert.equal(store.calls.get, calls + 1, '2 was evicted')
})

test('cache: answers "nothing stored" never push configured projects out, and a project that changes kind is not held twice', async () => {
  const { store, clock, cache } = setup({ maxEntries: 3 })
  for (let id = 1; id <= 3; id++) store.data.set(id, stored(id))
  for (let id = 1; id <= 3; id++) await cache.get(id)
  // A client asking for a thousand made-up ids.
  for (let id = 1000; id < 2000; id++) assert.equal(await cache.get(id), null)
  const calls = store.calls.get
  for (let id = 1; id <= 3; id++) assert.equal((await cache.get(id))?.projectId, id)
  assert.equal(store.calls.get, calls, 'the configured projects are still cached')
  assert.equal(cache.stats().projectEntries, 6, '3 projects and 3 answers "nothing stored"')
  // Configured, then removed: the fresh answer replaces the other kind's entry.
  store.data.set(1000, stored(1000))
  clock.t += 10_000
  assert.equal((await cache.get(1000))?.projectId, 1000)
  store.data.delete(1000)
  clock.t += 10_000
  assert.equal(await cache.get(1000), null)
  const afterRemoval = store.calls.get
  assert.equal(await cache.get(1000), null)
  assert.equal(store.calls.get, afterRemoval, 'the answer "nothing stored" is cached, not shadowed by the expired project')
})

test('cache: reports the lag of each invalidation and stops listening when closed', async () => {
  const lags: number[] = []
  const { store, cache } = setup({ onInvalidation: lag => lags.push(lag) })
  store.emit(invalidation(1, 1, [], 4_999_950))
  store.emit(invalidation(1, 2, [], 5_000_100))
  assert.deepEqual(lags, [50, 0], 'a writer clock ahead of ours counts as no lag')
  assert.equal(store.listenerCount(), 1)
  cache.close()
  assert.equal(store.listenerCount(), 0)
})

test('cache: refuses nonsensical options', () => {
  const store = fakeStore()
  assert.throws(() => createGrantCache({ store, ttlMs: -1 }), /ttlMs/)
  assert.throws(() => createGrantCache({ store, maxEntries: 0 }), /maxEntries/)
  assert.throws(() => createGrantCache({ store, staleWindowMs: Number.NaN }), /staleWindowMs/)
})

test('cache: root namespace settings are cached like projects — fresh, negative, dropped by their invalidation, stale on failure, then failing closed', async () => {
  const { store, clock, cache } = setup()
  assert.equal(await cache.namespace('acme'), null)
  assert.equal(await cache.namespace('ACME'), null, 'looked up lower-cased')
  assert.equal(store.calls.getNamespace, 1, 'unknown is cached too')
  assert.equal(await cache.namespace('acme/sub'), null, 'a subgroup is never a key')
  assert.equal(store.calls.getNamespace, 1)

  store.namespaces.set('acme', { namespacePath: 'acme', jobTokenPoliciesEnabled: false, version: 1 })
  assert.equal(await cache.namespace('acme'), null, 'still the cached answer')
  store.emit({ kind: 'namespace', namespace: 'acme', version: 1, publishedAt: 4_999_990 })
  assert.equal((await cache.namespace('acme'))?.jobTokenPoliciesEnabled, false, 'dropped by its invalidation')
  assert.equal(cache.stats().namespaceEntries, 1)
  store.emit(invalidation(1, 1, ['acme']))
  assert.equal(store.calls.getNamespace, 2)
  await cache.namespace('acme')
  assert.equal(store.calls.getNamespace, 2, 'a project invalidation leaves namespaces alone')

  store.failure = new Error('down')
  clock.t += 10_000 + 29_000
  assert.equal((await cache.namespace('acme'))?.jobTokenPoliciesEnabled, false, 'stale within the window')
  clock.t += 2_000
  await assert.rejects(cache.namespace('acme'), GrantsStoreUnavailableError)
  store.failure = null
  store.emit({ kind: 'reset', reason: 'test' })
  cache.invalidateNamespace('acme')
  assert.equal(cache.stats().namespaceEntries, 0)
})

// anyOf: a question asked of a listing's projects (does any keep a format from job tokens?).
const listing = (from: number, count: number): readonly number[] => Object.freeze(Array.from({ length: count }, (_, i) => from + i))
const marked = (grants: StoredGrants | null): boolean => grants?.inboundEnabled === false

test('cache: anyOf keeps its answer beside the listing, though the cache holds fewer of its projects', async () => {
  const { store, cache } = setup({ maxEntries: 10 })
  const ids = listing(1, 50)
  for (const id of ids) store.data.set(id, stored(id))
  assert.equal(await cache.anyOf(ids, 'k', marked), false)
  assert.equal(store.calls.get, 50)
  // Other projects push the listing's out of the cache; the answer stays, without a promise.
  for (let id = 100; id < 120; id++) {
    store.data.set(id, stored(id))
    await cache.get(id)
  }
  assert.equal(cache.anyOf(ids, 'k', marked), false)
  assert.equal(store.calls.get, 70, 'no project of the listing read again')
  // Another question of the same listing, and the same numbers in another listing, are their own
  // (each read its projects again, but the 10 the cache holds).
  assert.equal(await cache.anyOf(ids, 'other', () => true), true)
  assert.equal(store.calls.get, 120)
  assert.equal(await cache.anyOf(listing(1, 50), 'k', marked), false)
  assert.equal(store.calls.get, 160)
  // A listing that may change is asked anew each time.
  let asked = 0
  const counted = (grants: StoredGrants | null): boolean => { asked++; return marked(grants) }
  const open = [1, 2, 3]
  await cache.anyOf(open, 'k', counted)
  await cache.anyOf(open, 'k', counted)
  assert.equal(asked, 6)
})

test('cache: anyOf keeps its answer no longer than its oldest project answer would be kept', async () => {
  const { store, clock, cache } = setup({ negativeTtlMs: 4_000 })
  store.data.set(1, stored(1))
  await cache.get(1)
  clock.t += 6_000
  // Project 1 answered at 1000 (fresh until 11000), 2 now: unknown, fresh until 11000 too.
  const ids = listing(1, 2)
  assert.equal(await cache.anyOf(ids, 'k', marked), false)
  assert.equal(store.calls.get, 2)
  clock.t += 3_999
  assert.equal(cache.anyOf(ids, 'k', marked), false)
  store.data.set(1, { ...stored(1, 2), inboundEnabled: false })
  clock.t += 1
  const again = cache.anyOf(ids, 'k', marked)
  assert.ok(again instanceof Promise, 'past the first answer\'s TTL')
  assert.equal(await again, true)
  // TTL 0: nothing kept.
  const none = setup({ ttlMs: 0 })
  await none.cache.anyOf(ids, 'k', marked)
  await none.cache.anyOf(ids, 'k', marked)
  assert.equal(none.store.calls.get, 4)
})

test('cache: anyOf drops its answer when one of its projects is invalidated, during the reads too, or on a reset', async () => {
  const { store, cache } = setup()
  const ids = listing(1, 3)
  const reads = (): number => store.calls.get
  await cache.anyOf(ids, 'k', marked)
  // Another project's write keeps it; one of its own drops it.
  store.emit(invalidation(99, 2))
  cache.invalidate(98)
  await cache.anyOf(ids, 'k', marked)
  assert.equal(reads(), 3)
  store.data.set(2, { ...stored(2, 2), inboundEnabled: false })
  store.emit(invalidation(2, 2))
  assert.equal(await cache.anyOf(ids, 'k', marked), true)
  assert.equal(reads(), 4, 'project 2 read again, the others from the cache')
  cache.invalidate(3)
  store.data.delete(2)
  store.emit(invalidation(2, 3))
  assert.equal(await cache.anyOf(ids, 'k', marked), false)
  // A write during the reads: the answer goes to those that asked, and is not kept.
  store.hold = true
  cache.invalidate(1)
  const during = cache.anyOf(ids, 'k', marked)
  await eventually(() => store.held() === 1)
  store.data.set(1, { ...stored(1, 2), inboundEnabled: false })
  store.emit(invalidation(1, 2))
  store.hold = false
  store.release()
  assert.equal(await during, false, 'read before the write')
  assert.equal(await cache.anyOf(ids, 'k', marked), true)
  // A reset, and more invalidations than are remembered, drop it too (the projects' answers
  // read again from the store, or from the cache where it holds them).
  const before = reads()
  let asked = 0
  const counted = (grants: StoredGrants | null): boolean => { asked++; return marked(grants) }
  store.emit({ kind: 'reset', reason: 'test' })
  assert.equal(await cache.anyOf(ids, 'k', counted), true)
  assert.equal(reads(), before + 3)
  assert.equal(asked, 1, 'project 1 keeps them')
  for (let i = 0; i < 1024; i++) store.emit(invalidation(1000 + i, 2))
  await cache.anyOf(ids, 'k', counted)
  assert.equal(asked, 1, 'none of its projects among the last 1,024')
  for (let i = 0; i < 1025; i++) store.emit(invalidation(1000 + i, 3))
  await cache.anyOf(ids, 'k', counted)
  await cache.anyOf(ids, 'k', counted)
  assert.equal(asked, 2)
  assert.equal(reads(), before + 3)
})

test('cache: anyOf keeps nothing drawn from answers served stale, and fails closed as get() does', async () => {
  const { store, clock, cache } = setup({ staleWindowMs: 5_000 })
  const ids = listing(1, 2)
  for (const id of ids) store.data.set(id, stored(id))
  assert.equal(await cache.anyOf(ids, 'k', marked), false)
  clock.t += 10_000
  store.failure = new Error('down')
  assert.equal(await cache.anyOf(ids, 'k', marked), false, 'stale within the window')
  assert.equal(await cache.anyOf(ids, 'k', marked), false)
  assert.equal(store.calls.get, 6, 'each time asked of the store')
  clock.t += 5_001
  await assert.rejects(async () => await cache.anyOf(ids, 'k', marked), GrantsStoreUnavailableError)
  store.failure = null
  assert.equal(await cache.anyOf(ids, 'k', marked), false)
})

test('cache: anyOf finds its project among the invalidations since it was asked, few or many', async () => {
  const { store, cache } = setup()
  const ids = listing(1, 40)
  let asked = 0
  const counted = (grants: StoredGrants | null): boolean => { asked++; return marked(grants) }
  await cache.anyOf(ids, 'k', counted)
  assert.equal(asked, 40)
  // Few since (each looked for in the listing), one of them its own, the last: drawn again.
  for (let i = 0; i < 5; i++) store.emit(invalidation(1000 + i, 2))
  store.emit(invalidation(40, 2))
  await cache.anyOf(ids, 'k', counted)
  assert.equal(asked, 80)
  // Many since (the listing read into a set for the ask), one of them its own, among the first.
  store.emit(invalidation(1, 3))
  for (let i = 0; i < 500; i++) store.emit(invalidation(2000 + i, 2))
  await cache.anyOf(ids, 'k', counted)
  assert.equal(asked, 120)
  // Many since, none its own; then few, none its own: kept.
  for (let i = 0; i < 500; i++) store.emit(invalidation(3000 + i, 2))
  await cache.anyOf(ids, 'k', counted)
  for (let i = 0; i < 5; i++) store.emit(invalidation(4000 + i, 2))
  await cache.anyOf(ids, 'k', counted)
  assert.equal(asked, 120)
  // A reset among many since: drawn again.
  for (let i = 0; i < 100; i++) store.emit(invalidation(5000 + i, 2))
  store.emit({ kind: 'reset', reason: 'test' })
  await cache.anyOf(ids, 'k', counted)
  assert.equal(asked, 160)
})
