// Finding: the reads GitLab answers by a role's ability (a release list, one release, an asset's
// download, the latest release, the environments list, a package's file list, a pipeline's jobs
// and bridges) were known to the gate's code until the catalog came to mark them (`roleAbility`).
// A catalog of one's own (GATE_CATALOG_DIR, at start or on SIGHUP) written before the field
// marks none of them, and the gate loaded it: a job outside a public project's allowlist was let
// through to them all, 200 where the shipped catalog answers 403 NOT_ALLOWLISTED. The loader now
// holds every catalog to the importer's rules for these fields (a pipeline's read must name
// read_pipeline, which every catalog built from the docs pages has): such a catalog stops the
// start, and a reload to it keeps the catalog in use.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_CATALOG_DIR } from '../../src/catalog/load.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const RELEASES = '/api/v4/projects/300/releases'

/** The shipped catalog with no route marked by a role's ability: as one written before the field. */
function catalogWithoutRoleAbilities (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'catalog-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(join(DEFAULT_CATALOG_DIR, 'policies.json'), join(dir, 'policies.json'))
  const doc = JSON.parse(readFileSync(join(DEFAULT_CATALOG_DIR, 'routes.json'), 'utf8'))
  for (const route of doc.routes) delete route.roleAbility
  writeFileSync(join(dir, 'routes.json'), JSON.stringify(doc))
  return dir
}

test('a catalog that marks no read GitLab answers by a role\'s ability stops the start', async (t) => {
  const dir = catalogWithoutRoleAbilities(t)
  await assert.rejects(startTestGate(t, { GATE_CATALOG_DIR: dir }), (err: Error) => {
    assert.equal(err.name, 'CatalogError')
    assert.match(err.message, /a pipeline's route needs roleAbility "read_pipeline".*build it again with `job-token-gate catalog import`/)
    return true
  })
})

test('a reload to such a catalog keeps the one in use: a public project\'s release list stays refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'catalog-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const file of ['routes.json', 'policies.json']) cpSync(join(DEFAULT_CATALOG_DIR, file), join(dir, file))
  const g = await startTestGate(t, { GATE_CATALOG_DIR: dir })
  // other/tools (300): public, every feature enabled, an allowlist without acme/app (100).
  g.gitlab.projects.get(300)!.visibility = 'public'
  assert.equal((await send(g.url, 'GET', RELEASES, { 'job-token': TOKENS.app })).json().code, 'NOT_ALLOWLISTED')
  cpSync(join(catalogWithoutRoleAbilities(t), 'routes.json'), join(dir, 'routes.json'))
  const reloaded = g.gate.reloadCatalog()
  assert.equal(reloaded.ok, false, 'the reload is refused')
  const res = await send(g.url, 'GET', RELEASES, { 'job-token': TOKENS.app })
  assert.equal(res.status, 403, res.text)
  assert.equal(res.json().code, 'NOT_ALLOWLISTED')
  assert.equal(g.seen.length, 0, 'GitLab never saw it')
})
