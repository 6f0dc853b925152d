// Bounded caches for resolved identities and namespace lookups: single flight (concurrent misses
// on one key share one load), a TTL per entry, and a short negative cache (a flood of one bad
// token costs one upstream call per negative TTL, not one per request). lru-cache keeps the values
// and the failures, each in its own bounded LRU with per-entry TTLs; the loads in flight are a Map
// of their promises. lru-cache's own fetch() is not used: it holds a slot in the LRU for each load,
// so a flood of loads that fail (random job tokens) pushed resolved identities out.

import { hash } from 'node:crypto'
import { countedLru } from '../lru.ts'
import { SharedLoads, type Waiter } from '../waiters.ts'

/** A clock in milliseconds, never 0 (lru-cache reads a start of 0 as no TTL): `performance` by default; tests pass one they move by hand. */
export interface Clock { now (): number }

/**
 * lru-cache's clock options for a TTL cache: the clock read on every lookup (`ttlResolution: 0`).
 * By default lru-cache reuses one reading for a millisecond and arms a timer per millisecond and
 * cache to forget it; on the allowed path that timer work (setTimeout, libuv's timer run, the
 * callback) counted about 2,300 instructions per request more than a clock read per lookup
 * (bench/README.md, the thirteenth round), and while the event loop is busy no timer runs, so an
 * entry outlived its TTL. A test's clock must be read on every lookup anyway: the timer would not
 * follow it.
 */
export function ttlClock (clock: Clock | undefined): { ttlResolution: 0, perf?: Clock } {
  return clock === undefined ? { ttlResolution: 0 } : { ttlResolution: 0, perf: clock }
}

export interface LoaderCacheOptions<V> {
  /** Most entries kept; the least recently used go first. */
  readonly max: number
  /** Longest time a value is kept. */
  readonly ttlMs: number
  /** How long a failure is remembered; 0 (the default) remembers none. */
  readonly negativeTtlMs?: number
  /** Whether a failure may be remembered: a failure that says nothing about the key must not be. */
  readonly cacheableError?: (err: unknown) => boolean
  /** A value's own lifetime in ms (e.g. until its token expires); the TTL is the smaller one. Below 1 ms: not kept. */
  readonly lifetimeOf?: (value: V) => number | undefined
  readonly clock?: Clock
}

/**
 * What a load is handed: `signal`, aborted once everyone waiting for it has gone (give up the
 * GitLab calls it makes); `waiters`, who waits for it, for the loads it waits for in turn.
 */
export type Load<V> = (signal: AbortSignal, waiters: Waiter) => Promise<V>

export interface LoaderCache<V> {
  /**
   * The cached value or failure for key, or the result of load(), shared by concurrent callers.
   * `waiter`: who asks (a request's client; none: one that never goes). A load whose every waiter
   * has gone is given up: its signal aborted, its key free for the next caller to load anew, its
   * outcome not kept; it rejects with LookupDropped, which only callers that have gone see.
   */
  get (key: string, load: Load<V>, waiter?: Waiter): Promise<V>
  /**
   * Hot path: the fresh cached value for key, counted as a hit, without a promise; undefined when
   * there is none (not cached, past its TTL, being loaded, or a remembered failure): call get().
   */
  cached (key: string): V | undefined
  /** Entries held, loads in flight included. */
  readonly size: number
  /** The keys held (for a token cache: hashes), most recently used first. */
  keys (): string[]
  clear (): void
  /** Lookup counters, for metrics. */
  stats (): LoaderCacheStats
}

export interface LoaderCacheStats { hits: number, negativeHits: number, misses: number, singleFlightWaits: number }

export function createLoaderCache<V> (options: LoaderCacheOptions<V>): LoaderCache<V> {
  const { max, ttlMs } = options
  const negativeTtlMs = options.negativeTtlMs ?? 0
  const cacheableError = options.cacheableError ?? (() => true)
  const lifetimeOf = options.lifetimeOf ?? (() => undefined)
  if (!Number.isSafeInteger(max) || max <= 0) throw new TypeError(`cache max must be a positive integer, got ${String(max)}`)
  if (!(ttlMs > 0)) throw new TypeError(`cache ttlMs must be positive, got ${String(ttlMs)}`)

  // Values, remembered failures and loads in flight are kept apart, each bounded on its own: a
  // flood of keys that all fail (random job tokens, each one call to GitLab) fills only the
  // failures, and a load takes no value's place while it runs (lru-cache's fetch() would hold a
  // slot for it, pushing the least recently used value out even when the load then fails).
  const values = countedLru<string, { readonly value: V }>(max, { ttl: ttlMs, ...ttlClock(options.clock) })
  const failures = countedLru<string, { readonly error: unknown }>(max, { ttl: Math.max(1, negativeTtlMs), ...ttlClock(options.clock) })
  const loading = new SharedLoads<V>()
  const counters: LoaderCacheStats = { hits: 0, negativeHits: 0, misses: 0, singleFlightWaits: 0 }
  const clock = options.clock ?? performance

  return {
    async get (key, load, waiter) {
      const hit = values.get(key)
      if (hit !== undefined) {
        counters.hits++
        return hit.value
      }
      const failed = failures.get(key)
      if (failed !== undefined) {
        counters.negativeHits++
        throw failed.error
      }
      counters.misses++
      const inFlight = loading.join(key, waiter)
      if (inFlight !== undefined) {
        counters.singleFlightWaits++
        return await inFlight
      }
      // A value's TTL runs from the start of its load: the answers it is made of (a job GitLab
      // said was running) are that old already when a slow load ends. Everyone waiting gone
      // (their clients left), the load is given up and whoever asks next loads anew: held to
      // their end, loads of made-up job tokens held every connection to a slow GitLab.
      const began = clock.now()
      return await loading.start(key, waiter, load, {
        value: value => {
          const ttl = Math.floor(Math.min(ttlMs - (clock.now() - began), lifetimeOf(value) ?? Infinity))
          // lru-cache reads a TTL of 0 as "forever": a value with less than 1 ms to live is not stored.
          if (ttl >= 1) values.set(key, { value }, { ttl })
        },
        error: error => { if (negativeTtlMs > 0 && cacheableError(error)) failures.set(key, { error }) }
      })
    },
    cached (key) {
      // A fresh stored value only (a load in flight or a remembered failure is not one).
      const hit = values.get(key)
      if (hit === undefined) return undefined
      counters.hits++
      return hit.value
    },
    get size () {
      return values.size + failures.size + loading.size
    },
    keys () {
      return [...values.keys(), ...failures.keys(), ...loading.keys()]
    },
    clear () {
      values.clear()
      failures.clear()
      // Loads still running answer their callers; their outcomes are not kept.
      loading.clear()
    },
    stats: () => ({ ...counters })
  }
}

/**
 * The cache key of a token: its SHA-256, so the cache never holds a usable token. Hot path (once
 * per job-token request): crypto.hash (Node 20.12+) gives createHash's hex in one call, without
 * the Hash object: 0.8 µs instead of 2 µs.
 */
export function tokenKey (token: string): string {
  return hash('sha256', token, 'hex')
}

/**
 * The last token hashed for each client connection, and its key. A client sends the same token
 * request after request on its keep-alive connection: its hash is computed once per connection,
 * not once per request. Kept on the connection only (a WeakMap keyed by the socket), so a token is
 * held no longer than the connection that carries it.
 */
const lastOnConnection = new WeakMap<object, { readonly token: string, readonly key: string }>()

function connectionTokenKey (token: string, connection: object | null | undefined): string {
  if (connection === undefined || connection === null) return tokenKey(token)
  const last = lastOnConnection.get(connection)
  if (last !== undefined && last.token === token) return last.key
  const key = tokenKey(token)
  lastOnConnection.set(connection, { token, key })
  return key
}

/** A LoaderCache keyed by token, which hashes the token before it touches the cache. */
export interface TokenCache<V> extends LoaderCache<V> {
  /** `connection`: the client connection the token came on (its hash is then computed once per connection). */
  cached (token: string, connection?: object | null): V | undefined
}

export function createTokenCache<V> (options: LoaderCacheOptions<V>): TokenCache<V> {
  const cache = createLoaderCache(options)
  return {
    get: (token, load, waiter) => cache.get(tokenKey(token), load, waiter),
    cached: (token, connection) => cache.cached(connectionTokenKey(token, connection)),
    get size () { return cache.size },
    keys: () => cache.keys(),
    clear: () => { cache.clear() },
    stats: () => cache.stats()
  }
}
