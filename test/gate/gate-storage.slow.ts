// A gate's caches hold storage for what they hold, not for every entry they may hold: lru-cache
// given `max` allocates all of its slots when a cache is made, and a gate makes some thirty
// caches of 10,000 entries, most of which a deployment never fills (src/lru.ts).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { loadConfig } from '../../src/config.ts'
import { createGate, type Gate } from '../../src/gate/server.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createJobResolver } from '../../src/identity/resolver.ts'
import { countedLru } from '../../src/lru.ts'
import { heapMiB } from '../helpers/heap.ts'

test('a counted LRU keeps its most recently used entries up to max, each for its TTL', () => {
  let now = 1000
  const cache = countedLru<string, number>(3, { ttl: 100, ttlResolution: 0, perf: { now: () => now } })
  for (const [i, key] of ['a', 'b', 'c'].entries()) cache.set(key, i)
  assert.equal(cache.get('a'), 0, 'a read makes a the most recently used')
  cache.set('d', 3)
  assert.deepEqual([...cache.keys()].sort(), ['a', 'c', 'd'], 'the least recently used (b) went first')
  cache.set('e', 4, { ttl: 10 })
  assert.equal(cache.size, 3)
  now += 11
  assert.equal(cache.get('e'), undefined, 'an entry\'s own TTL')
  assert.equal(cache.get('a'), 0)
  now += 100
  assert.equal(cache.get('a'), undefined, 'the cache\'s TTL')
  for (const max of [0, -1, 1.5, Number.NaN]) assert.throws(() => countedLru(max), /cache max must be a positive integer/)
})

test('empty counted LRUs of 10,000 entries hold next to nothing', () => {
  const before = heapMiB()
  const caches = Array.from({ length: 100 }, () => countedLru<string, string>(10_000, { ttl: 1000 }))
  const held = heapMiB() - before
  assert.equal(caches.length, 100)
  // With every slot allocated up front: about 30 MiB.
  assert.ok(held < 4, `100 empty caches hold ${held.toFixed(1)} MiB`)
})

test('a gate built with the default settings holds a few MiB of heap, not its caches at full size', async () => {
  const config = loadConfig({ GATE_UPSTREAM_URL: 'http://127.0.0.1:9', GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0', GATE_SERVICE_TOKEN: 'glpat-service-token-000000' })
  const build = async (): Promise<Gate> => createGate(config, {
    store: await createMemoryStore(),
    resolver: createJobResolver({ upstream: 'http://127.0.0.1:9', serviceToken: 'glpat-service-token-000000', cache: { tokenTtlMs: config.identityCacheTtlMs, maxTokens: config.identityCacheMaxTokens, namespaceTtlMs: config.namespaceCacheTtlMs } }),
    logger: pino({ level: 'silent' })
  })
  // The first gate loads the catalogs, which every later one shares.
  const gates = [await build()]
  const before = heapMiB()
  for (let i = 0; i < 5; i++) gates.push(await build())
  const perGate = (heapMiB() - before) / 5
  assert.equal(gates.length, 6)
  // 12 MiB each while every cache allocated its 10,000 slots up front; about 2 MiB since.
  assert.ok(perGate < 5, `a gate holds ${perGate.toFixed(1)} MiB`)
})
