// Finding: the lookups of the projects and groups a fine-grained token's GraphQL request names are
// cached by the path as written, up to 8,192 characters, 10,000 entries in each of two caches (the
// targets, and the groups found by path), and a "not found" stays in memory until pushed out
// (its 5 s only keep it from being used). Each made-up path costs the client one request and
// GitLab a lookup or two: through a gate, 3,000 requests naming made-up paths of 8 KB grew the heap
// by 31 MiB (`project(fullPath:)`), 55 MiB as a mutation's `fullPath` (a project, else a group),
// and the caches full, one token's requests held about 180 MiB. A key longer than 64 characters
// is now its SHA-256.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { BoundaryTarget } from '../../src/graphql/explain.ts'
import { createTargetResolver } from '../../src/graphql/permission-check.ts'
import { heapMiB } from '../helpers/heap.ts'
import { gitlabFindingNothing } from '../helpers/gitlab-nothing.ts'

test('made-up long paths looked up and not found keep no more than a hash each', async () => {
  // GitLab as the service token sees it: no project or group at any of these paths.
  const { gitlab, lookups } = gitlabFindingNothing()
  const resolve = createTargetResolver({ gitlab })
  const padding = 'x'.repeat(8000)
  // A path that names no kind: a project, else a group, so both caches keep it.
  const target = (n: number): BoundaryTarget => ({ kind: 'namespace', path: `nobody/${n}${padding}`, from: 'input.fullPath' })
  assert.equal(await resolve(target(0)), null)
  assert.equal(await resolve(target(0)), null)
  assert.equal(lookups(), 2, 'not found, as a project and as a group, then cached')
  const before = heapMiB()
  for (let n = 1; n <= 3000; n++) assert.equal(await resolve(target(n)), null)
  const grown = heapMiB() - before
  assert.equal(lookups(), 2 + 2 * 3000)
  // Kept whole: about 48 MiB (3,000 paths of 8 KB in each cache).
  assert.ok(grown < 8, `3,000 made-up paths grew the heap by ${grown.toFixed(1)} MiB`)
  // Still one entry per path: asked again within its 5 s, it is not looked up.
  assert.equal(await resolve(target(3000)), null)
  assert.equal(await resolve({ kind: 'namespace', path: `NOBODY/3000${padding}`, from: 'input.fullPath' }), null, 'any case')
  assert.equal(lookups(), 2 + 2 * 3000)
})
