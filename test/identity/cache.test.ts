// The loader cache under the resolvers: single flight, negative entries, TTL bounds, size bound,
// and keys that are token hashes.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createLoaderCache, createTokenCache, tokenKey } from '../../src/identity/cache.ts'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

test('concurrent misses share one load', async () => {
  const cache = createLoaderCache<number>({ max: 10, ttlMs: 10_000 })
  let loads = 0
  const load = async (): Promise<number> => { loads++; await sleep(20); return 42 }
  const values = await Promise.all(Array.from({ length: 100 }, () => cache.get('k', load)))
  assert.equal(loads, 1)
  assert.ok(values.every(v => v === 42))
  assert.equal(await cache.get('k', load), 42)
  assert.equal(loads, 1, 'then served from the cache')
})

test('failures are remembered for the negative TTL only, and only when cacheable', async () => {
  const cache = createLoaderCache<number>({ max: 10, ttlMs: 10_000, negativeTtlMs: 1000, cacheableError: err => (err as Error).message === 'bad token' })
  let loads = 0
  const bad = async (): Promise<number> => { loads++; throw new Error('bad token') }
  await assert.rejects(cache.get('bad', bad), /bad token/)
  await assert.rejects(cache.get('bad', bad), /bad token/)
  assert.equal(loads, 1)
  await sleep(1100)
  await assert.rejects(cache.get('bad', bad), /bad token/)
  assert.equal(loads, 2)

  let transient = 0
  const down = async (): Promise<number> => { transient++; throw new Error('upstream down') }
  await assert.rejects(cache.get('t', down))
  await assert.rejects(cache.get('t', down))
  assert.equal(transient, 2, 'a transient failure is never remembered')
})

test('a value lives no longer than its own lifetime', async () => {
  const cache = createLoaderCache<{ until: number }>({ max: 10, ttlMs: 60_000, lifetimeOf: v => v.until - Date.now() })
  let loads = 0
  const load = async (): Promise<{ until: number }> => { loads++; return { until: Date.now() + 1000 } }
  await cache.get('k', load)
  await cache.get('k', load)
  assert.equal(loads, 1)
  await sleep(1100)
  await cache.get('k', load)
  assert.equal(loads, 2)
})

test('size is bounded', async () => {
  const cache = createLoaderCache<number>({ max: 5, ttlMs: 60_000 })
  for (let i = 0; i < 50; i++) await cache.get(String(i), async () => i)
  assert.equal(cache.size, 5)
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

test('bad options stop the start', () => {
  assert.throws(() => createLoaderCache({ max: 0, ttlMs: 1 }), /max/)
  assert.throws(() => createLoaderCache({ max: 1, ttlMs: 0 }), /ttlMs/)
})
