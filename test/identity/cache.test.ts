// The loader cache under the resolvers: single flight, negative entries, TTL bounds, size bound,
// and keys that are token hashes. Time is a clock the tests move; nothing sleeps, but for one test
// of the default clock, which keeps the event loop busy for a few tens of milliseconds.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import crypto, { createHash } from 'node:crypto'
import { syncBuiltinESMExports } from 'node:module'
import { createLoaderCache, createTokenCache, tokenKey } from '../../src/identity/cache.ts'
import { LookupDropped, type Waiter } from '../../src/waiters.ts'

function manualClock (): { now: () => number, advance: (ms: number) => void } {
  let t = 1_000_000
  return { now: () => t, advance: ms => { t += ms } }
}

function deferred<T> (): { promise: Promise<T>, resolve: (v: T) => void, reject: (err: unknown) => void } {
  let resolve!: (v: T) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

test('concurrent misses share one load', async () => {
  const cache = createLoaderCache<number>({ max: 10, ttlMs: 10_000 })
  let loads = 0
  const gate = deferred<number>()
  const load = async (): Promise<number> => { loads++; return await gate.promise }
  const pending = Array.from({ length: 100 }, () => cache.get('k', load))
  gate.resolve(42)
  const values = await Promise.all(pending)
  assert.equal(loads, 1)
  assert.ok(values.every(v => v === 42))
  assert.equal(await cache.get('k', load), 42)
  assert.equal(loads, 1, 'then served from the cache')
  assert.deepEqual(cache.stats(), { hits: 1, negativeHits: 0, misses: 100, singleFlightWaits: 99 })
})

test('a shared load that fails fails every waiter, and is not kept when transient', async () => {
  const cache = createLoaderCache<number>({ max: 10, ttlMs: 10_000, negativeTtlMs: 1000, cacheableError: () => false })
  const gate = deferred<number>()
  let loads = 0
  const pending = Array.from({ length: 5 }, () => cache.get('k', async () => { loads++; return await gate.promise }))
  gate.reject(new Error('upstream down'))
  for (const p of pending) await assert.rejects(p, /upstream down/)
  assert.equal(loads, 1)
  assert.equal(cache.size, 0)
  assert.equal(await cache.get('k', async () => 7), 7)
})

test('failures are remembered for the negative TTL only, and only when cacheable', async () => {
  const clock = manualClock()
  const cache = createLoaderCache<number>({ max: 10, ttlMs: 10_000, negativeTtlMs: 1000, cacheableError: err => (err as Error).message === 'bad token', clock })
  let loads = 0
  const bad = async (): Promise<number> => { loads++; throw new Error('bad token') }
  await assert.rejects(cache.get('bad', bad), /bad token/)
  clock.advance(1000)
  await assert.rejects(cache.get('bad', bad), /bad token/)
  assert.equal(loads, 1, 'remembered for the whole negative TTL')
  assert.equal(cache.stats().negativeHits, 1)
  clock.advance(1)
  await assert.rejects(cache.get('bad', bad), /bad token/)
  assert.equal(loads, 2, 'and asked again after it')

  let transient = 0
  const down = async (): Promise<number> => { transient++; throw new Error('upstream down') }
  await assert.rejects(cache.get('t', down))
  await assert.rejects(cache.get('t', down))
  assert.equal(transient, 2, 'a transient failure is never remembered')

  const none = createLoaderCache<number>({ max: 10, ttlMs: 10_000, clock })
  await assert.rejects(none.get('bad', bad))
  await assert.rejects(none.get('bad', bad))
  assert.equal(loads, 4, 'without a negative TTL no failure is remembered')
})

test('values live for the TTL', async () => {
  const clock = manualClock()
  const cache = createLoaderCache<number>({ max: 10, ttlMs: 30_000, clock })
  let loads = 0
  const load = async (): Promise<number> => ++loads
  assert.equal(await cache.get('k', load), 1)
  clock.advance(30_000)
  assert.equal(await cache.get('k', load), 1)
  clock.advance(1)
  assert.equal(await cache.get('k', load), 2)
})

test('with the default clock a value expires on time while the event loop is busy (no timer must run first)', async () => {
  // lru-cache's default reuses a clock reading until a 1 ms timer forgets it: a lookup after a
  // long synchronous task, before any timer could run, read the old time and kept the value.
  // 500 ms: the value must still be fresh right after its load on a loaded machine.
  const cache = createLoaderCache<number>({ max: 10, ttlMs: 500 })
  let loads = 0
  assert.equal(await cache.get('k', async () => ++loads), 1)
  assert.equal(cache.cached('k'), 1)
  const until = performance.now() + 600
  while (performance.now() < until) {} // synchronous: no timer runs
  assert.equal(cache.cached('k'), undefined)
})

test('a value lives no longer than its own lifetime', async () => {
  const clock = manualClock()
  const cache = createLoaderCache<{ until: number }>({ max: 10, ttlMs: 60_000, lifetimeOf: v => v.until - clock.now(), clock })
  let loads = 0
  const load = async (): Promise<{ until: number }> => { loads++; return { until: clock.now() + 1000 } }
  await cache.get('k', load)
  await cache.get('k', load)
  assert.equal(loads, 1)
  clock.advance(1001)
  await cache.get('k', load)
  assert.equal(loads, 2)

  // Less than 1 ms to live: handed to the caller, not kept (lru-cache reads a TTL of 0 as forever).
  const spent = async (): Promise<{ until: number }> => { loads++; return { until: clock.now() } }
  assert.deepEqual(await cache.get('spent', spent), { until: clock.now() })
  assert.deepEqual(await cache.get('spent', spent), { until: clock.now() })
  assert.equal(loads, 4)
  assert.ok(!cache.keys().includes('spent'))
})

test('size is bounded; a load in flight takes no value\'s place, and one the cache was cleared under still answers its callers', async () => {
  const cache = createLoaderCache<number>({ max: 5, ttlMs: 60_000 })
  for (let i = 0; i < 50; i++) await cache.get(String(i), async () => i)
  assert.equal(cache.size, 5)

  const slow = deferred<number>()
  const pending = cache.get('slow', async () => await slow.promise)
  assert.deepEqual(['45', '46', '47', '48', '49'].map(k => cache.cached(k)), [45, 46, 47, 48, 49], 'a load pushes no value out')
  slow.resolve(1)
  assert.equal(await pending, 1)
  assert.equal(cache.cached('slow'), 1, 'stored once loaded')

  const cleared = deferred<number>()
  const waiting = cache.get('cleared', async () => await cleared.promise)
  cache.clear()
  cleared.resolve(2)
  assert.equal(await waiting, 2)
  assert.equal(cache.cached('cleared'), undefined, 'cleared while it loaded: not stored afterwards')
  assert.equal(cache.size, 0)
})

test('a flood of failing keys does not push resolved values out', async () => {
  const cache = createLoaderCache<number>({ max: 3, ttlMs: 10_000, negativeTtlMs: 1000, cacheableError: () => true })
  for (const key of ['a', 'b', 'c']) assert.equal(await cache.get(key, async () => key.charCodeAt(0)), key.charCodeAt(0))
  // Random job tokens, each refused by GitLab and remembered as such.
  for (let i = 0; i < 20; i++) await assert.rejects(cache.get(`bad${i}`, async () => { throw new Error('unknown token') }), /unknown token/)
  assert.deepEqual(['a', 'b', 'c'].map(key => cache.cached(key)), [97, 98, 99], 'the resolved values are still there')
  // The failures have a bound of their own: the last three are remembered.
  let loads = 0
  const bad = async (): Promise<number> => { loads++; throw new Error('unknown token') }
  await assert.rejects(cache.get('bad19', bad), /unknown token/)
  assert.equal(loads, 0, 'a recent failure is remembered')
  await assert.rejects(cache.get('bad0', bad), /unknown token/)
  assert.equal(loads, 1, 'an old one was pushed out by the newer failures')
})

test('token caches are keyed by the SHA-256 of the token', async () => {
  const token = 'glcbt-64_secretsecretsecret'
  assert.equal(tokenKey(token), createHash('sha256').update(token).digest('hex'))
  const cache = createTokenCache<string>({ max: 10, ttlMs: 1000 })
  let loads = 0
  assert.equal(await cache.get(token, async () => { loads++; return 'a' }), 'a')
  assert.equal(await cache.get(token, async () => { loads++; return 'b' }), 'a')
  assert.equal(await cache.get(token + 'x', async () => { loads++; return 'c' }), 'c')
  assert.equal(loads, 2)
  // What the cache holds are hashes, never a token.
  assert.deepEqual(cache.keys().sort(), [tokenKey(token), tokenKey(token + 'x')].sort())
  assert.ok(cache.keys().every(k => /^[0-9a-f]{64}$/.test(k)))
})

test('token caches hash a token once per client connection, and a connection that changes token gets the other token\'s value', async (t) => {
  // Count the SHA-256 computations (the cache module binds node:crypto's hash).
  const real = crypto.hash
  let hashes = 0
  crypto.hash = ((...args: Parameters<typeof real>) => { hashes++; return real(...args) }) as typeof real
  syncBuiltinESMExports()
  t.after(() => { crypto.hash = real; syncBuiltinESMExports() })

  const cache = createTokenCache<string>({ max: 10, ttlMs: 60_000 })
  const [a, b] = ['glcbt-64_tokenAAAAAAAAAAAAAAAA', 'glcbt-64_tokenAAAAAAAAAAAAAAAB']
  await cache.get(a, async () => 'value of a')
  await cache.get(b, async () => 'value of b')
  const one = {}
  const two = {}
  hashes = 0
  for (let i = 0; i < 5; i++) assert.equal(cache.cached(a, one), 'value of a')
  assert.equal(hashes, 1, 'five requests on one connection: one hash')
  assert.equal(cache.cached(b, one), 'value of b', 'the connection changed token: never the last token\'s value')
  assert.equal(cache.cached(a, one), 'value of a')
  assert.equal(cache.cached(a, two), 'value of a')
  assert.equal(cache.cached(a, two), 'value of a')
  assert.equal(hashes, 4, 'a new token on a connection, and a new connection, are hashed')
  assert.equal(cache.cached('glcbt-64_unknown', one), undefined)
  assert.equal(cache.cached(a), 'value of a', 'without a connection: hashed every time')
  assert.equal(hashes, 6)
})

/** A client that leaves when told. */
function client (): Waiter & { leave: () => void } {
  let gone = false
  const listeners = new Set<() => void>()
  return {
    get gone () { return gone },
    watch: changed => { listeners.add(changed); return () => { listeners.delete(changed) } },
    leave: () => { gone = true; for (const l of [...listeners]) l() }
  }
}

test('a load runs while anyone waits for it; given up with the last, its signal aborted, the loads it waits for too, and nothing kept', async () => {
  const cache = createLoaderCache<string>({ max: 10, ttlMs: 60_000, negativeTtlMs: 60_000 })
  const inner = createLoaderCache<string>({ max: 10, ttlMs: 60_000 })
  const signals: AbortSignal[] = []
  let finish: (v: string) => void = () => {}
  const loadOf = (key: string) => async (signal: AbortSignal, waiters: Waiter): Promise<string> => {
    signals.push(signal)
    // A load it waits for in turn, wanted by whoever wants this one.
    return await inner.get(key, async s => {
      signals.push(s)
      return await new Promise<string>((resolve, reject) => {
        finish = resolve
        s.addEventListener('abort', () => { reject(new Error('aborted')) })
      })
    }, waiters)
  }
  const a = client()
  const b = client()
  const first = cache.get('k', loadOf('k'), a)
  const second = cache.get('k', loadOf('k'), b)
  await new Promise(resolve => setImmediate(resolve))
  a.leave()
  assert.deepEqual(signals.map(s => s.aborted), [false, false], 'one client still waits')
  finish('v')
  assert.equal(await second, 'v')
  await assert.rejects(first.then(() => { throw new Error('answered') }), /answered/, 'a client gone meanwhile is answered all the same')

  const c = client()
  const third = cache.get('other', loadOf('other'), c)
  await new Promise(resolve => setImmediate(resolve))
  c.leave()
  await assert.rejects(third, LookupDropped)
  assert.deepEqual(signals.slice(2).map(s => s.aborted), [true, true], 'the load and the one it waited for are given up')
  // Nothing kept: the next caller loads anew.
  const fourth = cache.get('other', async () => 'w', client())
  assert.equal(await fourth, 'w')
  // A caller already gone starts nothing.
  const d = client()
  d.leave()
  await assert.rejects(cache.get('new', async () => { throw new Error('loaded') }, d), LookupDropped)
})

test('bad options stop the start', () => {
  assert.throws(() => createLoaderCache({ max: 0, ttlMs: 1 }), /max/)
  assert.throws(() => createLoaderCache({ max: 1, ttlMs: 0 }), /ttlMs/)
})

test('cached(): a fresh value without a promise; nothing for a miss, a remembered failure, a load in flight or an expired entry', async () => {
  const clock = manualClock()
  const cache = createLoaderCache<number>({ max: 10, ttlMs: 1000, negativeTtlMs: 1000, clock })
  assert.equal(cache.cached('k'), undefined)
  const gate = deferred<number>()
  const pending = cache.get('k', async () => await gate.promise)
  assert.equal(cache.cached('k'), undefined, 'in flight')
  gate.resolve(7)
  await pending
  assert.equal(cache.cached('k'), 7)
  await assert.rejects(cache.get('bad', async () => { throw new Error('refused') }), /refused/)
  assert.equal(cache.cached('bad'), undefined, 'a remembered failure goes through get()')
  clock.advance(1000)
  assert.equal(cache.cached('k'), 7, 'fresh through the TTL, as get() reads it')
  clock.advance(1)
  assert.equal(cache.cached('k'), undefined, 'expired')
  assert.equal(cache.stats().hits, 2)
  const tokens = createTokenCache<number>({ max: 10, ttlMs: 1000, clock })
  await tokens.get('glcbt-secret', async () => 3)
  assert.equal(tokens.cached('glcbt-secret'), 3)
  assert.ok(tokens.keys().every(k => !k.includes('secret')))
})
