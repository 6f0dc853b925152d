// Bounded caches for resolved identities and namespace lookups, with single flight (concurrent
// misses on one key share one load) and a short negative cache (a flood of one bad token costs
// one upstream call per negative TTL, not one per request).

import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'

export interface LoaderCacheOptions<V> {
  /** Most entries kept; the least recently used go first. */
  readonly max: number
  /** Longest time a value is kept. */
  readonly ttlMs: number
  /** How long a failure is remembered; 0 (the default) remembers none. */
  readonly negativeTtlMs?: number
  /** Whether a failure may be remembered: a failure that says nothing about the key must not be. */
  readonly cacheableError?: (err: unknown) => boolean
  /** A value's own lifetime in ms (e.g. until its token expires); the TTL is the smaller one. */
  readonly lifetimeOf?: (value: V) => number | undefined
}

export interface LoaderCache<V> {
  /** The cached value or failure for key, or the result of load(), shared by concurrent callers. */
  get (key: string, load: () => Promise<V>): Promise<V>
  readonly size: number
  /** The keys held (for a token cache: hashes), most recently used first. */
  keys (): string[]
  clear (): void
  /** Lookup counters, for metrics. */
  stats (): LoaderCacheStats
}

export interface LoaderCacheStats { hits: number, negativeHits: number, misses: number, singleFlightWaits: number }

type Entry<V> = { readonly ok: true, readonly value: V } | { readonly ok: false, readonly error: unknown }

export function createLoaderCache<V> (options: LoaderCacheOptions<V>): LoaderCache<V> {
  const { max, ttlMs } = options
  const negativeTtlMs = options.negativeTtlMs ?? 0
  const cacheableError = options.cacheableError ?? (() => true)
  const lifetimeOf = options.lifetimeOf ?? (() => undefined)
  if (!Number.isSafeInteger(max) || max <= 0) throw new TypeError(`cache max must be a positive integer, got ${String(max)}`)
  if (!(ttlMs > 0)) throw new TypeError(`cache ttlMs must be positive, got ${String(ttlMs)}`)

  const entries = new LRUCache<string, Entry<V>>({ max, ttl: ttlMs })
  const inflight = new Map<string, Promise<V>>()
  const counters: LoaderCacheStats = { hits: 0, negativeHits: 0, misses: 0, singleFlightWaits: 0 }

  const load = async (key: string, loader: () => Promise<V>): Promise<V> => {
    try {
      const value = await loader()
      const ttl = Math.min(ttlMs, lifetimeOf(value) ?? Infinity)
      if (ttl >= 1) entries.set(key, { ok: true, value }, { ttl: Math.floor(ttl) })
      return value
    } catch (error) {
      if (negativeTtlMs > 0 && cacheableError(error)) entries.set(key, { ok: false, error }, { ttl: negativeTtlMs })
      throw error
    } finally {
      // After the set above: a caller arriving now finds the entry, not a settled promise.
      inflight.delete(key)
    }
  }

  return {
    get (key, loader) {
      const hit = entries.get(key)
      if (hit !== undefined) {
        if (hit.ok) counters.hits++
        else counters.negativeHits++
        return hit.ok ? Promise.resolve(hit.value) : Promise.reject(hit.error)
      }
      counters.misses++
      let pending = inflight.get(key)
      if (pending !== undefined) counters.singleFlightWaits++
      if (pending === undefined) {
        pending = load(key, loader)
        inflight.set(key, pending)
      }
      return pending
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

/** The cache key of a token: its SHA-256, so the cache never holds a usable token. */
export function tokenKey (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/** A LoaderCache keyed by token, which hashes the token before it touches the cache. */
export function createTokenCache<V> (options: LoaderCacheOptions<V>): LoaderCache<V> {
  const cache = createLoaderCache(options)
  return {
    get: (token, load) => cache.get(tokenKey(token), load),
    get size () { return cache.size },
    keys: () => cache.keys(),
    clear: () => { cache.clear() },
    stats: () => cache.stats()
  }
}
