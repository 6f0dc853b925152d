import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULT_CATALOG_DIR, loadCatalog } from '../../src/catalog/load.ts'
import { Router } from '../../src/routing/router.ts'
import { findOverlaps, formatOverlaps } from '../../src/routing/lint.ts'

const catalog = loadCatalog()
const router = Router.compile(catalog.routes)
const overlaps = findOverlaps(catalog.routes, router)

test('catalog/overlaps.txt is the current lint output', () => {
  const golden = readFileSync(join(DEFAULT_CATALOG_DIR, 'overlaps.txt'), 'utf8')
  assert.equal(formatOverlaps(overlaps), golden, 'run `npm run catalog:lint` and review the change')
})

test('every overlap example is matched by both routes of the pair, and one of them or a third that also matches wins', () => {
  assert.ok(overlaps.length > 0)
  let third = 0
  for (const { a, b, example, winner } of overlaps) {
    const only = (route: typeof a): Router => Router.compile([route])
    assert.equal(only(a).match(a.method, example)?.route.id, a.id, `${a.id} matches ${example}`)
    assert.equal(only(b).match(b.method, example)?.route.id, b.id, `${b.id} matches ${example}`)
    assert.ok(winner !== null, `${example}: some route wins`)
    if (winner !== a && winner !== b) {
      // Three routes match the example (Cargo's index and download routes beside the package files route).
      assert.equal(only(winner).match(a.method, example)?.route.id, winner.id, `${example}: ${winner.id} matches it too`)
      third++
    }
  }
  assert.ok(third < overlaps.length / 10, 'a third route wins only rarely')
})

test('the overlaps the precedence rules are for are reported with the right winner', () => {
  const find = (x: string, y: string): typeof overlaps[number] | undefined =>
    overlaps.find(o => (o.a.pattern === x && o.b.pattern === y) || (o.a.pattern === y && o.b.pattern === x))
  const npm = find('/groups/:id/-/packages/npm/-/package/*package_name/dist-tags', '/groups/:id/-/packages/npm/*package_name')
  assert.equal(npm?.winner?.pattern, '/groups/:id/-/packages/npm/-/package/*package_name/dist-tags')
  const review = find('/projects/:id/environments/:environment_id', '/projects/:id/environments/review_apps')
  assert.equal(review?.winner?.pattern, '/projects/:id/environments/review_apps')
  const files = find('/projects/:id/packages/:package_id/package_files', '/projects/:id/packages/npm/*package_name')
  assert.equal(files?.winner?.pattern, '/projects/:id/packages/npm/*package_name')
  assert.equal(find('/projects/:id/packages/:package_id', '/projects/:id/packages/pypi/simple'), undefined, 'different lengths never overlap')
})
