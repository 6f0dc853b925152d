// The gate's count-bounded caches, built on lru-cache.

import { LRUCache } from 'lru-cache'

/** lru-cache's options for a cache bounded by its number of entries only. */
export type CountedLruOptions<K extends {}, V extends {}> = Omit<LRUCache.Options<K, V, unknown>, 'max' | 'maxSize' | 'maxEntrySize' | 'sizeCalculation'>

/**
 * An LRU of at most `max` entries whose storage grows with what it holds. Given `max`, lru-cache
 * builds every array at its full length when the cache is made (some 0.4 MB and several
 * milliseconds for 10,000 entries with a TTL), and a gate makes some thirty caches of 10,000, most
 * of which a deployment never fills (those of GraphQL or the configuration API where neither is
 * used): megabytes held from the start, and a gate took about 100 ms to build. Bounded by
 * `maxSize` with each entry of size 1 instead, lru-cache evicts the same way (the least recently
 * used first, before `max` is passed) and allocates as entries arrive.
 */
export function countedLru<K extends {}, V extends {}> (max: number, options: CountedLruOptions<K, V> = {}): LRUCache<K, V> {
  // maxSize 0 is "no bound" to lru-cache.
  if (!Number.isSafeInteger(max) || max < 1) throw new TypeError(`cache max must be a positive integer, got ${String(max)}`)
  return new LRUCache<K, V>({ ...options, maxSize: max, sizeCalculation: one })
}

const one = (): number => 1
