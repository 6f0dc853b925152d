// Finding: the grant cache keeps what a listing's package rules answer beside the listing
// (GrantCache.anyOf), and it kept a set of the listing's projects with it, to tell whether an
// invalidation named one of them. The project finder keeps up to 10,000 group listings of up to
// 1,000 projects, a group spelled as many ways (`05000`, `005000`, ... are group 5000 to GitLab),
// and the set doubled what each held: through a gate, 400 spellings of a group of 1,000 projects
// grew the heap by 39 KB each where they had grown it by 20 KB, some 190 MiB more with the
// finder's listings full. The projects are now looked for in the listing itself.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createGrantCache } from '../../src/grants/cache.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { heapMiB } from '../helpers/heap.ts'

test('what a listing answers is kept beside it without a copy of its projects', async () => {
  const store = await createMemoryStore()
  const cache = createGrantCache({ store, ttlMs: 600_000 })
  const keeps = (): boolean => false
  // 500 listings of one group's 1,000 projects, as the finder keeps one per spelling of the group.
  const listings = Array.from({ length: 500 }, () => Object.freeze(Array.from({ length: 1000 }, (_, i) => 100_000 + i)))
  assert.equal(await cache.anyOf(listings[0]!, 'pypi read', keeps), false)
  const before = heapMiB()
  for (const listing of listings) assert.equal(await cache.anyOf(listing, 'pypi read', keeps), false)
  const grown = heapMiB() - before
  // A set of each listing's projects: about 10 MiB.
  assert.ok(grown < 2, `500 listings' answers grew the heap by ${grown.toFixed(1)} MiB`)
  // Kept: answered again without a promise.
  for (const listing of listings) assert.equal(cache.anyOf(listing, 'pypi read', keeps), false)
  cache.close()
  await store.close()
})
