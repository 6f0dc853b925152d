// Regression cases for what fuzzing found in src/routing/.
//
// Router: a route with two globs (`*package_version/(*path/):file_name[/authorize]`) tried every
// end for its second glob at every end of its first, so matching was quadratic in the number of
// segments: a PUT to /projects/1/packages/generic/p/ with 4,000 more segments (an 8 KiB path,
// within the canonicalizer's limits) took about 0.7 s. After the last glob every token takes one
// segment, so that glob has one possible end; the match is now linear.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { loadCatalog } from '../../src/catalog/load.ts'
import { canonicalize } from '../../src/routing/canonical.ts'
import { Router } from '../../src/routing/router.ts'
import { createOracle } from '../helpers/oracle.ts'

const routes = loadCatalog().routes
const router = Router.compile(routes)

/** The fastest of a few runs, in milliseconds: noise on a busy machine only adds time. */
function fastest (run: () => void, times = 3): number {
  let best = Infinity
  for (let i = 0; i < times; i++) {
    const t0 = performance.now()
    run()
    best = Math.min(best, performance.now() - t0)
  }
  return best
}

function apiPath (target: string): string {
  const c = canonicalize('PUT', target)
  assert.equal(c.kind, 'api', `${target.slice(0, 80)} is not an API path`)
  return c.kind === 'api' ? c.apiPath : ''
}

const LONG = 4000 // segments: an 8 KiB path, the canonicalizer's default limit

test('router: a generic package upload path with thousands of segments matches in linear time', () => {
  const path = apiPath('/api/v4/projects/1/packages/generic/p/' + 'a/'.repeat(LONG) + 'x')
  let match = router.match('PUT', path)
  const ms = fastest(() => { match = router.match('PUT', path) })
  assert.ok(ms < 100, `matching took ${ms.toFixed(1)} ms (quadratic matching took several hundred)`)
  assert.equal(match?.route.id, 'put_projects_id_packages_generic_package_name_package_version_path_file_name')
  // Lazy globs: package_version takes one segment, path the rest but the file name.
  assert.deepEqual({ ...match!.params }, { id: '1', package_name: 'p', package_version: 'a', path: Array(LONG - 1).fill('a').join('/'), file_name: 'x' })
})

test('router: the same with /authorize, and the path the fuzzer shrank to (every segment "-")', () => {
  const authorize = apiPath('/api/v4/projects/1/packages/generic/p/' + 'a/'.repeat(LONG - 1) + 'x/authorize')
  assert.ok(fastest(() => router.match('PUT', authorize)) < 100)
  assert.equal(router.match('PUT', authorize)?.route.id, 'put_projects_id_packages_generic_package_name_package_version_path_file_name_authorize')
  const dashes = apiPath('/api/v4/projects/-/%70ackages/%67eneric/' + '-/'.repeat(LONG))
  assert.ok(fastest(() => router.match('PUT', dashes)) < 100)
  const m = router.match('PUT', dashes)
  assert.equal(m?.route.id, 'put_projects_id_packages_generic_package_name_package_version_path_file_name')
  assert.equal(m?.params.package_version, '-')
})

test('router: an npm tarball path with thousands of segments around its "-" matches in linear time', () => {
  const path = apiPath('/api/v4/projects/1/packages/npm/' + 'a/'.repeat(LONG / 2) + '-/' + 'b/'.repeat(LONG / 2 - 1) + 'b.tgz')
  assert.ok(fastest(() => router.match('GET', path)) < 100)
  const m = router.match('GET', path)
  assert.equal(m?.route.id, 'get_projects_id_packages_npm_package_name_file_name')
  assert.equal(m?.params.package_name, Array(LONG / 2).fill('a').join('/'))
  assert.equal(m?.params.file_name, Array(LONG / 2 - 1).fill('b').join('/') + '/b.tgz')
})

test('router: two-glob routes still agree with the reference oracle on short paths', () => {
  const oracle = createOracle(routes)
  const words = ['a', '-', 'x', 'authorize', 'x.json', '5']
  const paths: string[] = []
  for (let n = 1; n <= 6; n++) {
    for (let k = 0; k < words.length ** Math.min(n, 3); k++) {
      const segs = Array.from({ length: n }, (_, i) => words[Math.floor(k / words.length ** (i % 3)) % words.length]!)
      paths.push('/projects/1/packages/generic/p/' + segs.join('/'), '/projects/1/packages/npm/' + segs.join('/'))
    }
  }
  for (const method of ['PUT', 'GET']) {
    for (const path of paths) {
      const m = router.match(method, path)
      const got = m === null ? null : { routeId: m.route.id, params: { ...m.params }, format: m.format }
      assert.deepEqual(got, oracle.match(method, path), `${method} ${path}`)
    }
  }
})
