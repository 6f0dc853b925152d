import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULT_CATALOG_DIR, loadCatalog } from '../../src/catalog/load.ts'
import { ImportError, importPages, parseDocsPage } from '../../src/catalog/import.ts'

const source = (name: string): { source: string, text: string } => {
  const file = join(DEFAULT_CATALOG_DIR, 'sources', name)
  return { source: file, text: readFileSync(file, 'utf8') }
}
const EN = source('fine-grained-permissions.en.md')
const JA = source('fine-grained-permissions.ja.md')

test('the committed catalog is exactly what the import builds from the docs pages', () => {
  const committed = readFileSync(join(DEFAULT_CATALOG_DIR, 'routes.json'), 'utf8')
  assert.equal(importPages([EN, JA]), committed, 'run `npm run catalog:import` and commit catalog/routes.json')
})

test('the catalog is the union of both pages: 157 routes with policies, 29 without', () => {
  const { routes } = loadCatalog()
  assert.equal(routes.filter(r => !r.skipPolicies).length, 157)
  assert.equal(routes.filter(r => r.skipPolicies).length, 29)
  const en = parseDocsPage(EN.text)
  const ja = parseDocsPage(JA.text)
  assert.equal(en.length, 185)
  assert.equal(ja.length, 186)
  const npmAuthorize = routes.find(r => r.method === 'PUT' && r.pattern === '/projects/:id/packages/npm/:package_name/authorize')
  assert.ok(npmAuthorize, 'the Japanese page adds the npm authorize route')
  assert.deepEqual(npmAuthorize.policies, ['admin_packages'])
  assert.ok(!en.some(r => r.pattern === '/projects/:id/packages/npm/:package_name/authorize'))
})

test('entries carry policies in lower case, resource, title and where the accessed project comes from', () => {
  const { routes } = loadCatalog()
  const byKey = new Map(routes.map(r => [`${r.method} ${r.pattern}`, r]))
  const create = byKey.get('POST /projects/:id/deployments')
  assert.deepEqual(create?.policies, ['admin_deployments', 'admin_environments'])
  assert.equal(create?.resource, 'deployments')
  assert.equal(create?.title, 'Create a deployment')
  assert.equal(create?.accessedProject, 'project')
  assert.equal(byKey.get('GET /jobs/:id/artifacts')?.accessedProject, 'job')
  assert.equal(byKey.get('GET /groups/:id/-/packages/maven/*path/:file_name')?.accessedProject, 'group')
  assert.equal(byKey.get('GET /group/:id/-/packages/composer/packages')?.accessedProject, 'group')
  assert.equal(byKey.get('GET /packages/maven/*path/:file_name')?.accessedProject, 'instance')
  assert.equal(byKey.get('GET /job')?.accessedProject, 'token_job')
  const registry = byKey.get('DELETE /projects/:id/registry/repositories/:repository_id')
  assert.equal(registry?.skipPolicies, true)
  assert.deepEqual(registry?.policies, [])
  assert.equal(registry?.resource, 'container_registry')
  assert.equal(new Set(routes.map(r => r.id)).size, routes.length, 'ids are unique')
})

test('every group, instance and job route says how its project is found; project routes say nothing', () => {
  const { routes } = loadCatalog()
  const from = (key: string): string | undefined => routes.find(r => `${r.method} ${r.pattern}` === key)?.projectFrom
  assert.equal(from('PUT /packages/conan/v1/files/:package_name/:package_version/:package_username/:package_channel/:recipe_revision/export/:file_name'), 'conan_username')
  assert.equal(from('DELETE /packages/conan/v1/conans/:package_name/:package_version/:package_username/:package_channel'), 'conan_username')
  assert.equal(from('GET /packages/conan/v1/ping'), 'none')
  assert.equal(from('GET /packages/conan/v1/conans/search'), 'none')
  assert.equal(from('GET /packages/maven/*path/:file_name'), 'maven_instance_path')
  assert.equal(from('PUT /packages/npm/-/package/*package_name/dist-tags/:tag'), 'npm_scope_package')
  assert.equal(from('GET /packages/npm/*package_name'), 'npm_scope_package')
  assert.equal(from('POST /packages/npm/-/npm/v1/security/audits/quick'), 'none')
  assert.equal(from('DELETE /groups/:id/-/packages/npm/-/package/*package_name/dist-tags/:tag'), 'npm_group_package')
  assert.equal(from('GET /groups/:id/-/packages/maven/*path/:file_name'), 'maven_group_package')
  assert.equal(from('GET /groups/:id/-/packages/pypi/files/:sha256/*file_identifier'), 'pypi_group_file')
  assert.equal(from('GET /groups/:id/-/packages/pypi/simple'), 'none')
  assert.equal(from('GET /group/:id/-/packages/composer/packages'), 'none')
  assert.equal(from('GET /jobs/:id/artifacts'), 'job_pipeline')
  assert.equal(from('GET /job'), 'none')
  for (const r of routes) assert.equal(r.projectFrom === undefined, r.accessedProject === 'project', `${r.method} ${r.pattern}`)
  // Every route with policies outside /projects/:id is looked up, but the npm audits (no package in the URL).
  const unresolved = routes.filter(r => !r.skipPolicies && (r.projectFrom === 'none' || r.projectFrom === 'pypi_group_file')).map(r => r.pattern)
  assert.deepEqual(unresolved.sort(), ['/groups/:id/-/packages/npm/-/npm/v1/security/advisories/bulk', '/groups/:id/-/packages/npm/-/npm/v1/security/audits/quick', '/packages/npm/-/npm/v1/security/advisories/bulk', '/packages/npm/-/npm/v1/security/audits/quick'])
})

test('a group or instance route no rule names stops the import', () => {
  const text = EN.text.replace('| `GET /packages/maven/*path/:file_name` |', '| `GET /packages/maven2/*path/:file_name` |')
  assert.notEqual(text, EN.text)
  assert.throws(() => importPages([{ source: 'x.md', text }]), (err: Error) => err instanceof ImportError && /GET \/packages\/maven2\/\*path\/:file_name: no rule says how GitLab finds the project/.test(err.message))
})

test('pages that disagree on a route are refused, naming both', () => {
  const other = EN.text.replace('| Get a specific deployment | `GET /projects/:id/deployments/:deployment_id` | `READ_DEPLOYMENTS` |',
    '| Get a specific deployment | `GET /projects/:id/deployments/:deployment_id` | `ADMIN_DEPLOYMENTS` |')
  assert.notEqual(other, EN.text)
  assert.throws(() => importPages([EN, { source: 'newer.md', text: other }]),
    (err: Error) => err instanceof ImportError && /GET \/projects\/:id\/deployments\/:deployment_id/.test(err.message) && /newer\.md says admin_deployments/.test(err.message))
})

test('a page without endpoint tables is refused', () => {
  assert.throws(() => importPages([{ source: 'empty.md', text: '# Nothing here\n' }]), /no endpoint tables/)
})
