import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CatalogError, DEFAULT_CATALOG_DIR, loadCatalog, validateCatalog } from '../../src/catalog/load.ts'

const routesDoc = (): any => JSON.parse(readFileSync(join(DEFAULT_CATALOG_DIR, 'routes.json'), 'utf8'))
const policiesDoc = (): any => JSON.parse(readFileSync(join(DEFAULT_CATALOG_DIR, 'policies.json'), 'utf8'))
const firstId = (): string => routesDoc().routes[0].id

test('the shipped catalog loads and is frozen', () => {
  const catalog = loadCatalog()
  assert.equal(catalog.routes.length, 324)
  assert.ok(Object.isFrozen(catalog.routes[0]))
  assert.ok(Object.isFrozen(catalog.routes[0]!.policies))
  assert.equal(catalog.policies.policies.length, 20)
  assert.equal(catalog.policies.policies.find(p => p.name === 'admin_packages')?.implies, 'read_packages')
})

const broken: Array<{ name: string, edit: (routes: any, policies: any) => void, message: RegExp }> = [
  { name: 'unknown method', edit: r => { r.routes[0].method = 'TRACE' }, message: new RegExp(`entry "${firstId()}" field method`) },
  { name: 'missing field', edit: r => { delete r.routes[0].title }, message: new RegExp(`entry "${firstId()}".*title`) },
  { name: 'unknown policy', edit: r => { r.routes[0].policies = ['read_everything'] }, message: new RegExp(`entry "${firstId()}": unknown policy "read_everything"`) },
  { name: 'deprecated policy', edit: r => { r.routes[0].policies = ['read_containers'] }, message: /policy "read_containers" is deprecated/ },
  { name: 'skip-policies route with policies', edit: r => { r.routes[0].skipPolicies = true }, message: new RegExp(`entry "${firstId()}" field policies`) },
  { name: 'route with no policies', edit: r => { r.routes[0].policies = [] }, message: new RegExp(`entry "${firstId()}" field policies`) },
  { name: 'authenticate_with route skipping policies', edit: r => { const route = r.routes.find((x: any) => x.authenticateWith === true); route.skipPolicies = true; route.policies = ['read_packages'] }, message: /field policies must NOT have more than 0 items/ },
  { name: 'unknown public access feature', edit: r => { r.routes[0].publicAccessFeatures = ['wiki'] }, message: new RegExp(`entry "${firstId()}" field publicAccessFeatures/0`) },
  { name: 'empty public access features', edit: r => { r.routes[0].publicAccessFeatures = [] }, message: new RegExp(`entry "${firstId()}" field publicAccessFeatures`) },
  { name: 'job token scope other than project', edit: r => { r.routes[0].jobTokenScope = 'group' }, message: new RegExp(`entry "${firstId()}" field jobTokenScope`) },
  { name: 'job token scope on a job route', edit: r => { r.routes.find((x: any) => x.pattern === '/jobs/:id/artifacts').jobTokenScope = 'project' }, message: /entry "get_jobs_id_artifacts": jobTokenScope "project" needs a \/projects\/:id route/ },
  { name: 'duplicate id', edit: r => { r.routes[1].id = r.routes[0].id }, message: /id is used twice/ },
  { name: 'duplicate route', edit: r => { r.routes[1].pattern = r.routes[0].pattern; r.routes[1].method = r.routes[0].method }, message: /is listed twice/ },
  { name: 'bad pattern', edit: r => { r.routes[0].pattern = '/projects/:id/(x' }, message: new RegExp(`entry "${firstId()}": invalid route pattern`) },
  { name: 'accessed project contradicting the pattern', edit: r => { r.routes[0].accessedProject = 'instance' }, message: /accessedProject is "instance" but the pattern says "project"/ },
  { name: 'project finder contradicting the pattern', edit: r => { r.routes.find((x: any) => x.pattern === '/packages/maven/*path/:file_name').projectFrom = 'none' }, message: /projectFrom is "none" but the pattern says "maven_instance_path"/ },
  { name: 'project finder on a project route', edit: r => { r.routes[0].projectFrom = 'none' }, message: /projectFrom is "none" but the pattern says "\(none\)"/ },
  { name: 'unknown project finder', edit: r => { r.routes[0].projectFrom = 'guess' }, message: new RegExp(`entry "${firstId()}" field projectFrom`) },
  { name: 'admin policy without its read twin', edit: (_r, p) => { delete p.policies[1].implies }, message: /admin policy "admin_deployments" must imply/ },
  { name: 'unknown top-level field', edit: r => { r.extra = 1 }, message: /must NOT have additional properties/ },
  { name: 'role ability on a write', edit: r => { r.routes.find((x: any) => x.method === 'POST' && x.pattern === '/projects/:id/releases').roleAbility = 'read_code' }, message: /entry "post_projects_id_releases": roleAbility only on a GET route/ },
  { name: 'a write that reads no project', edit: r => { r.routes.find((x: any) => x.method === 'POST' && x.pattern === '/projects/:id/releases').readsNoProject = true }, message: /entry "post_projects_id_releases": readsNoProject only on a GET route/ },
  { name: 'an instance route that reads no project', edit: r => { r.routes.find((x: any) => x.pattern === '/packages/conan/v1/ping').readsNoProject = true }, message: /entry "get_packages_conan_v1_ping": readsNoProject needs a \/projects\/:id route/ },
  { name: 'a pipeline\'s read without its role ability', edit: r => { delete r.routes.find((x: any) => x.pattern === '/projects/:id/pipelines/:pipeline_id/jobs').roleAbility }, message: /entry "get_projects_id_pipelines_pipeline_id_jobs": a pipeline's route needs roleAbility "read_pipeline".*catalog import/ }
]

for (const { name, edit, message } of broken) {
  test(`an invalid catalog is refused with a message naming the entry: ${name}`, () => {
    const routes = routesDoc()
    const policies = policiesDoc()
    edit(routes, policies)
    assert.throws(() => validateCatalog(routes, policies), (err: Error) => {
      assert.ok(err instanceof CatalogError, `CatalogError expected, got ${err.name}`)
      assert.match(err.message, message)
      return true
    })
  })
}

test('loadCatalog names an unreadable or malformed file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'catalog-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  assert.throws(() => loadCatalog(dir), /cannot read .*routes\.json: ENOENT/)
  writeFileSync(join(dir, 'routes.json'), '{"routes": [')
  writeFileSync(join(dir, 'policies.json'), JSON.stringify(policiesDoc()))
  assert.throws(() => loadCatalog(dir), /routes\.json is not valid JSON/)
})

test('only authenticate_with routes may have no policies without skipping them', () => {
  const routes = routesDoc()
  const none = routes.routes.filter((r: any) => !r.skipPolicies && r.policies.length === 0)
  assert.ok(none.length > 0)
  assert.ok(none.every((r: any) => r.authenticateWith === true))
  assert.doesNotThrow(() => validateCatalog(routesDoc(), policiesDoc()))
  delete none[0].authenticateWith
  assert.throws(() => validateCatalog(routes, policiesDoc()), new RegExp(`entry "${none[0].id as string}" field policies must NOT have fewer than 1 items`))
})
