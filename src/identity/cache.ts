// Bounded caches for resolved identities and namespace lookups, on lru-cache's fetch(): single
// flight (concurrent misses on one key share one load), a TTL per entry, and a short negative
// cache (a flood of one bad token costs one upstream call per negative TTL, not one per request).
// Measured against the hand-written single flight this replaced (1,000 keys, Node 20, 2 busy
// vCPUs): a hit costs 0.5-0.65 µs instead of 0.2-0.37 µs, a miss 12 µs instead of 1.2-2.4 µs
// (lru-cache makes an AbortController per load). A miss is followed by a GitLab call of
// milliseconds, and a hit stays under a microsecond, so the library's version is kept.

import { hash } from 'node:crypto'
import { LRUCache } from 'lru-cache'

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

export interface LoaderCache<V> {
  /** The cached value or failure for key, or the result of load(), shared by concurrent callers. */
  get (key: string, load: () => Promise<V>): Promise<V>
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

type Entry<V> = { readonly ok: true, readonly value: V } | { readonly ok: false, readonly error: unknown }

/** A load's outcome that must not be kept (a value past its lifetime, a failure not remembered), passed to every waiter. */
class NotKept { constructor (readonly entry: Entry<unknown>) {} }

export function createLoaderCache<V> (options: LoaderCacheOptions<V>): LoaderCache<V> {
  const { max, ttlMs } = options
  const negativeTtlMs = options.negativeTtlMs ?? 0
  const cacheableError = options.cacheableError ?? (() => true)
  const lifetimeOf = options.lifetimeOf ?? (() => undefined)
  if (!Number.isSafeInteger(max) || max <= 0) throw new TypeError(`cache max must be a positive integer, got ${String(max)}`)
  if (!(ttlMs > 0)) throw new TypeError(`cache ttlMs must be positive, got ${String(ttlMs)}`)

  const entries = new LRUCache<string, Entry<V>, () => Promise<V>>({
    max,
    ttl: ttlMs,
    ...ttlClock(options.clock),
    // A load outlives the eviction or deletion of its entry: its waiters still get its result,
    // which is then not stored (lru-cache would otherwise reject them with the abort reason).
    ignoreFetchAbort: true,
    async fetchMethod (_key, _stale, { options: entryOptions, context: load }) {
      let value: V
      try {
        value = await load()
      } catch (error) {
        if (negativeTtlMs > 0 && cacheableError(error)) {
          entryOptions.ttl = negativeTtlMs
          return { ok: false, error }
        }
        throw new NotKept({ ok: false, error })
      }
      const ttl = Math.floor(Math.min(ttlMs, lifetimeOf(value) ?? Infinity))
      // lru-cache reads a TTL of 0 as "forever": a value with less than 1 ms to live is not stored.
      if (!(ttl >= 1)) throw new NotKept({ ok: true, value })
      entryOptions.ttl = ttl
      return { ok: true, value }
    }
  })
  const counters: LoaderCacheStats = { hits: 0, negativeHits: 0, misses: 0, singleFlightWaits: 0 }

  const unwrap = (entry: Entry<V>): V => {
    if (entry.ok) return entry.value
    throw entry.error
  }

  return {
    async get (key, load) {
      const status: LRUCache.Status<string, Entry<V>, () => Promise<V>> = {}
      let entry: Entry<V> | undefined
      const pending = entries.fetch(key, { context: load, status })
      if (status.fetch === 'hit') {
        entry = await pending
        if (entry!.ok) counters.hits++
        else counters.negativeHits++
        return unwrap(entry!)
      }
      counters.misses++
      if (status.fetch === 'inflight') counters.singleFlightWaits++
      try {
        entry = await pending
      } catch (err) {
        if (err instanceof NotKept) return unwrap(err.entry as Entry<V>)
        throw err
      }
      return unwrap(entry!)
    },
    cached (key) {
      // lru-cache's get() answers only a fresh stored entry (a load in flight is not one).
      const entry = entries.get(key)
      if (entry === undefined || !entry.ok) return undefined
      counters.hits++
      return entry.value
    },
    get size () {
      return entries.size
    },
    keys () {
      return [...entries.keys()]
    },
    clear () {
      entries.clear()
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
    get: (token, load) => cache.get(tokenKey(token), load),
    cached: (token, connection) => cache.cached(connectionTokenKey(token, connection)),
    get size () { return cache.size },
    keys: () => cache.keys(),
    clear: () => { cache.clear() },
    stats: () => cache.stats()
  }
}
