// Finding: the gate's answers for a project's full path were kept under the path as written, up to
// the 2,048 characters the gate looks up: GitLab's (src/projects/facts.ts, two caches of 10,000:
// projects found, and paths GitLab shows none at) and the store's (src/grants/cache.ts, "nothing
// configured at this path" kept apart, 10,000), an entry staying in memory until pushed out. A
// user's package write names its project by path, and both are asked before any credential is:
// with any `Cookie`, no account, each made-up path of 2 KB was kept whole in each. Through a gate,
// 3,000 such writes grew the heap by 12 MiB where short paths grew it by 9 (the test gate's own
// records), by 7 once kept by hash; the caches full held some 40 MiB of paths. A key past 64
// characters is now its SHA-256.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createProjectFactsLookup } from '../../src/projects/facts.ts'
import { createGrantCache } from '../../src/grants/cache.ts'
import type { GrantStore, InvalidationEvent } from '../../src/grants/store.ts'
import { adminGate } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { heapMiB } from '../helpers/heap.ts'
import { gitlabFindingNothing } from '../helpers/gitlab-nothing.ts'

// 2,040 characters: the gate looks up paths up to 2,048 (namesProjectTooLong). Each built anew,
// as a request's path is: a string sharing its padding with the others would cost nothing.
const madeUp = (n: number, letter = 'x'): string => Buffer.from(`nobody/${n}${letter.repeat(2030)}`).toString()

test('through a gate: a user\'s package write to a long made-up path is looked up, with any cookie', async t => {
  const g = await adminGate(t)
  const path = `/api/v4/projects/${encodeURIComponent(madeUp(0))}/packages/generic/x/1.0/f.txt`
  await send(g.url, 'PUT', path, { cookie: '_gitlab_session=nobody' }, 'bytes')
  const lookups = (): number => g.gitlab.targets.filter(u => u.startsWith('/api/v4/projects/nobody%2F0x')).length
  const asked = lookups()
  assert.ok(asked >= 1, 'GitLab is asked which project the path names')
  // Kept: asked again within the TTL, GitLab is not, in any case of the path's letters.
  await send(g.url, 'PUT', path.replace('nobody', 'NOBODY'), { cookie: '_gitlab_session=nobody' }, 'bytes')
  assert.equal(lookups(), asked)
})

test('GitLab\'s answers for made-up long paths keep no more than a hash each', async () => {
  const { gitlab, lookups } = gitlabFindingNothing()
  const facts = createProjectFactsLookup({ gitlab })
  assert.equal((await facts.get(madeUp(0))).id, 0)
  const before = heapMiB()
  for (let n = 1; n <= 3000; n++) assert.equal((await facts.get(madeUp(n))).id, 0)
  const grown = heapMiB() - before
  // Kept whole: about 6 MiB.
  assert.ok(grown < 2, `3,000 made-up paths grew the heap by ${grown.toFixed(1)} MiB`)
  assert.equal(lookups(), 3001)
  // Still one entry per path, in any case of its ASCII letters.
  assert.equal((await facts.get(madeUp(7).toUpperCase())).id, 0)
  assert.equal(lookups(), 3001)
  // A letter only some collations' LOWER() folds is another path (asciiLower).
  assert.equal((await facts.get(madeUp(7, '\u212a'))).id, 0)
  assert.equal(lookups(), 3002)
})

test('the store\'s answers for made-up long paths keep no more than a hash each; a long stored path is still dropped when it changes', async () => {
  const paths = new Map<string, number>()
  let reads = 0
  let emit: (event: InvalidationEvent) => void = () => {}
  const store = {
    kind: 'memory',
    async resolvePath (path: string) { reads++; return paths.get(path) ?? null },
    subscribe (listener: (event: InvalidationEvent) => void) { emit = listener; return () => {} }
  } as unknown as GrantStore
  const cache = createGrantCache({ store })
  const stored = madeUp(1).replace('nobody', 'acme')
  paths.set(stored, 7)
  assert.equal(await cache.resolvePath(stored.toUpperCase()), 7, 'a long stored path is read from the store by its path')
  assert.equal(await cache.resolvePath(stored), 7)
  assert.equal(reads, 1)
  paths.delete(stored)
  emit({ kind: 'project', projectId: 7, version: 2, paths: [stored], publishedAt: Date.now() })
  assert.equal(await cache.resolvePath(stored), null, 'the invalidation dropped the answer kept by its hash')
  assert.equal(reads, 2)

  const before = heapMiB()
  for (let n = 2; n <= 3001; n++) assert.equal(await cache.resolvePath(madeUp(n)), null)
  const grown = heapMiB() - before
  assert.ok(grown < 2, `3,000 made-up paths grew the heap by ${grown.toFixed(1)} MiB`)
  assert.equal(reads, 3002)
  assert.ok(cache.stats().pathEntries > 3000)
})
