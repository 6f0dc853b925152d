// A catalog's same text loads to the same catalog, and its frozen route list compiles to one
// router per mount (src/catalog/load.ts, Router.compile): every gate of a process shares them.
// Changed text is read and validated again; a route list that is not frozen compiles anew.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CatalogError, DEFAULT_CATALOG_DIR, loadCatalog } from '../../src/catalog/load.ts'
import { Router } from '../../src/routing/router.ts'

test('the same catalog text is one catalog and one router per mount; changed text is read and validated again', t => {
  const dir = mkdtempSync(join(tmpdir(), 'catalog-once-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  cpSync(DEFAULT_CATALOG_DIR, dir, { recursive: true })

  const first = loadCatalog(dir)
  assert.equal(loadCatalog(dir), first, 'the same text: the same catalog')
  const router = Router.compile(first.routes, { mount: '/api/v4' })
  assert.equal(Router.compile(first.routes, { mount: '/api/v4' }), router, 'one router per frozen list and mount')
  assert.notEqual(Router.compile(first.routes, { mount: '/gitlab/api/v4' }), router, 'another mount, another router')
  assert.notEqual(Router.compile([...first.routes], { mount: '/api/v4' }), router, 'a list that is not frozen compiles anew')

  // Changed text: a new catalog, whose routes are the new file's.
  const routesFile = join(dir, 'routes.json')
  const doc = JSON.parse(readFileSync(routesFile, 'utf8')) as { routes: Array<{ title: string }> }
  doc.routes[0]!.title = 'changed'
  writeFileSync(routesFile, JSON.stringify(doc))
  const second = loadCatalog(dir)
  assert.notEqual(second, first)
  assert.equal(second.routes[0]!.title, 'changed')
  assert.notEqual(Router.compile(second.routes, { mount: '/api/v4' }), router)

  // Text that does not validate is refused, whatever was loaded before.
  writeFileSync(routesFile, JSON.stringify({ ...doc, routes: [...doc.routes, doc.routes[0]] }))
  assert.throws(() => loadCatalog(dir), CatalogError)
})
