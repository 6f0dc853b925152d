// Finding: the router keeps up to 4,096 slow-path matches (globs, leaf matchers), by method and
// path, paths over 512 characters never: a bound of about 2 MB. But a canonical path is a slice
// of the request's target, and so are the parameters cut from it, and V8 keeps a slice's whole
// string alive: each entry kept its request's whole target, query and all (up to Node's 16 KiB
// of request line and headers), twice where a parameter was kept too. Through a gate, 2,000
// requests of made-up Maven paths with a 14 KB query (a job token's, or none: the route is
// matched first) held 57 MiB, and the cache, which anyone can keep full, about twice that. A
// cached match now holds strings of its own.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import { createCanonicalizer } from '../../src/routing/canonical.ts'
import { Router } from '../../src/routing/router.ts'
import { heapMiB } from '../helpers/heap.ts'

test('the router\'s cached matches keep none of the targets their paths were cut from', () => {
  const router = Router.compile(loadCatalog().routes, { mount: '/api/v4' })
  const canonicalize = createCanonicalizer()
  const target = (i: number): string => i % 2 === 0
    ? `/api/v4/packages/maven/com/example/made-up-${i}/1.0/made-up-${i}-1.0.jar?q=${'x'.repeat(14_000)}`
    : `/api/v4/projects/42/packages/generic/pkg/1.0.0/file-${i}.bin?q=${'x'.repeat(14_000)}`
  const route = (target: string): void => {
    const canonical = canonicalize('GET', target)
    assert.equal(canonical.kind, 'api')
    if (canonical.kind !== 'api') return
    const match = router.matchRequest(canonical)
    assert.ok(match !== null, target.slice(0, 80))
    assert.ok(!Object.values(match.params).some(v => v.includes('xxxx')), 'the query is no parameter')
  }
  // The cache full first; then 4,096 requests with long queries take every place. Each target is
  // made, routed and dropped in turn: only what the cache keeps stays.
  for (let i = 0; i < 4096; i++) route(`/api/v4/projects/42/packages/generic/pkg/1.0.0/short-${i}.bin`)
  const before = heapMiB()
  for (let i = 0; i < 4096; i++) route(target(i))
  const grown = heapMiB() - before
  // Without strings of their own: about 58 MiB (4,096 targets of 14 KB).
  assert.ok(grown < 15, `the cache of 4,096 matches grew the heap by ${grown.toFixed(1)} MiB`)
  assert.equal(router.match('GET', '/projects/42/packages/generic/pkg/1.0.0/file-4095.bin')?.params.file_name, 'file-4095.bin', 'served from the cache')
})
