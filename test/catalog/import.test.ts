import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULT_CATALOG_DIR, loadCatalog } from '../../src/catalog/load.ts'
import { ImportError, importPages, parseDocsPage, parseSourceFile } from '../../src/catalog/import.ts'

const source = (name: string): { source: string, text: string } => {
  const file = join(DEFAULT_CATALOG_DIR, 'sources', name)
  return { source: file, text: readFileSync(file, 'utf8') }
}
const EN = source('fine-grained-permissions.en.md')
const JA = source('fine-grained-permissions.ja.md')
const SRC = source('gitlab-source-routes.json')

test('the committed catalog is exactly what the import builds from the docs pages and the source file', () => {
  const committed = readFileSync(join(DEFAULT_CATALOG_DIR, 'routes.json'), 'utf8')
  assert.equal(importPages([EN, JA, SRC]), committed, 'run `npm run catalog:import` and commit catalog/routes.json')
  const script = (JSON.parse(readFileSync(join(DEFAULT_CATALOG_DIR, '..', 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['catalog:import']
  for (const file of [EN, JA, SRC]) assert.ok(script?.includes(`catalog/sources/${file.source.split('/').pop()!}`), `npm run catalog:import reads ${file.source}`)
})

test('the catalog is the union of both pages (157 routes with policies, 29 without, 2 of those given policies by the source), 137 authenticate_with routes and the pipeline trigger', () => {
  const { routes } = loadCatalog()
  const pages = routes.filter(r => r.authenticateWith !== true && r.handlerReadsToken !== true)
  assert.equal(pages.filter(r => !r.skipPolicies).length, 159)
  assert.equal(pages.filter(r => r.skipPolicies).length, 27)
  // npm's metadata at the instance and group levels: unavailable on the pages, read_packages in
  // GitLab's source (lib/api/concerns/packages/npm_namespace_endpoints.rb), as the project's route.
  for (const pattern of ['/packages/npm/*package_name', '/groups/:id/-/packages/npm/*package_name', '/projects/:id/packages/npm/*package_name']) {
    const metadata = routes.find(r => r.method === 'GET' && r.pattern === pattern)
    assert.deepEqual([metadata?.skipPolicies, metadata?.policies], [false, ['read_packages']], pattern)
  }
  const fromSource = routes.filter(r => r.authenticateWith === true)
  assert.equal(fromSource.length, 137)
  assert.ok(fromSource.every(r => !r.skipPolicies))
  // Only Cargo's routes set job_token_policies; the rest have none.
  assert.deepEqual(fromSource.filter(r => r.policies.length > 0).map(r => r.pattern.split('/')[4]), Array(8).fill('cargo'))
  // The trigger API reads its `token` itself and checks the allowlist, never job token policies.
  const handler = routes.filter(r => r.handlerReadsToken === true)
  assert.deepEqual(handler.map(r => `${r.method} ${r.pattern}`), ['POST /projects/:id/(ref/*ref/)trigger/pipeline'])
  assert.ok(handler.every(r => r.skipPolicies && r.policies.length === 0 && r.resource === 'pipelines' && r.accessedProject === 'project'))
  assert.deepEqual(parseSourceFile(SRC.text).handlerTokenRoutes.map(r => r.credentials), [['job_token:params(token)']])
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
  assert.equal(from('GET /groups/:id/-/packages/debian/pool/:distribution/:project_id/:letter/:package_name/:package_version/:file_name'), 'project_id_param')
  assert.equal(from('GET /groups/:id/-/packages/debian/dists/*distribution/Release'), 'none')
  assert.equal(from('GET /job'), 'none')
  for (const r of routes) assert.equal(r.projectFrom === undefined, r.accessedProject === 'project', `${r.method} ${r.pattern}`)
  // Every route with policies outside /projects/:id is looked up, but the npm audits (no package in the URL).
  const unresolved = routes.filter(r => r.policies.length > 0 && (r.projectFrom === 'none' || r.projectFrom === 'pypi_group_file')).map(r => r.pattern)
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

// ---- The routes and settings read from GitLab's source (catalog/sources/gitlab-source-routes.json) ----

const sourceFile = parseSourceFile(SRC.text)
const key = (r: { method: string, pattern: string }): string => `${r.method} ${r.pattern}`

test('every authenticate_with route of the source file is in the catalog with where it was read and where GitLab reads the token', () => {
  const byKey = new Map(loadCatalog().routes.map(r => [key(r), r]))
  assert.ok(sourceFile.routes.length >= 60)
  for (const row of sourceFile.routes) {
    const route = byKey.get(key(row))
    assert.ok(route, `${key(row)} is in routes.json`)
    assert.equal(route.authenticateWith, true)
    assert.deepEqual(route.policies, row.policies)
    assert.match(row.read, /^(?:ee\/)?lib\/api\/\S+\.rb/, `${key(row)} names the GitLab file it was read from`)
    assert.ok(row.credentials.length > 0)
  }
  const families = ['helm', 'debian', 'debian_distributions', 'rubygems', 'ml_models', 'rpm', 'dependency_proxy', 'nuget', 'cargo', 'terraform', 'virtual_registries']
  for (const family of families) assert.ok(sourceFile.routes.some(r => r.pattern.includes(family)), `${family} routes are listed`)
  // The two group families and the instance ones are left to GitLab: no single project in the URL.
  assert.equal(byKey.get('GET /groups/:id/-/packages/nuget/query')?.projectFrom, 'none')
  assert.equal(byKey.get('GET /virtual_registries/packages/maven/:id/*path')?.accessedProject, 'instance')
  // Every virtual registry and its cleanup policy belongs to a top-level group; none is a package format.
  for (const family of ['virtual_registries/packages/maven', 'virtual_registries/packages/npm', 'virtual_registries/container', 'virtual_registries/cleanup']) {
    const routes = [...byKey.values()].filter(r => r.pattern.includes(family))
    assert.ok(routes.length > 0, `${family} routes are listed`)
    for (const route of routes) {
      assert.equal(route.projectFrom, 'none', `${route.method} ${route.pattern}`)
      assert.equal(route.packageFormat, undefined, `${route.method} ${route.pattern}`)
    }
  }
  assert.equal(byKey.get('GET /packages/terraform/modules/v1/:module_namespace/:module_name/:module_system/versions')?.projectFrom, 'none')
  // Package formats and operations come from the pattern, as for the docs routes.
  assert.equal(byKey.get('POST /projects/:id/packages/helm/api/:channel/charts')?.packageFormat, 'helm')
  assert.equal(byKey.get('POST /projects/:id/packages/helm/api/:channel/charts')?.packageOperation, 'write')
  assert.equal(byKey.get('GET /projects/:id/packages/cargo/config.json')?.packageFormat, 'cargo')
  assert.equal(byKey.get('DELETE /projects/:id/packages/nuget/*package_name/*package_version')?.packageOperation, 'delete')
  // Where GitLab reads the token is recorded in the source file, not in the catalog.
  assert.deepEqual(sourceFile.routes.find(r => r.pattern === '/projects/:id/packages/cargo/config.json')?.credentials, ['job_token:http_bearer_token'])
  assert.deepEqual(sourceFile.routes.find(r => r.pattern === '/projects/:id/packages/helm/:channel/index.yaml')?.credentials, ['job_token:http_basic_auth'])
  assert.ok(!('credentials' in byKey.get('GET /projects/:id/packages/cargo/config.json')!))
  // The Debian distributions API is Debian's: creating and changing a distribution is a write, deleting one a delete.
  assert.equal(byKey.get('POST /projects/:id/debian_distributions')?.packageFormat, 'debian')
  assert.equal(byKey.get('PUT /projects/:id/debian_distributions/:codename')?.packageOperation, 'write')
  assert.equal(byKey.get('DELETE /groups/:id/-/debian_distributions/:codename')?.packageOperation, 'delete')
  assert.equal(byKey.get('GET /groups/:id/-/debian_distributions/:codename/key.asc')?.projectFrom, 'none')
  assert.equal(byKey.get('POST /projects/:id/packages/rubygems/api/v1/gems')?.packageFormat, 'rubygems')
  assert.equal(byKey.get('PUT /projects/:id/packages/ml_models/:model_version_id/files/(*path/):file_name/authorize')?.packageFormat, 'ml_model')
  assert.equal(byKey.get('POST /projects/:id/packages/rpm')?.packageOperation, 'write')
  // The dependency proxy for packages reads the format's packages.
  assert.equal(byKey.get('GET /projects/:id/dependency_proxy/packages/npm/*package_name/-/*file_name')?.packageFormat, 'npm')
  assert.equal(byKey.get('GET /projects/:id/dependency_proxy/packages/maven/*path/:file_name')?.packageOperation, 'read')
})

test('npm\'s publish route is a delete when the request says Npm-Command: deprecate', () => {
  const routes = loadCatalog().routes
  const withHeader = routes.filter(r => r.packageDeleteWhen !== undefined).map(r => `${r.method} ${r.pattern}`)
  assert.deepEqual(withHeader, ['PUT /projects/:id/packages/npm/:package_name'])
  const route = routes.find(r => r.packageDeleteWhen !== undefined)!
  assert.equal(route.packageOperation, 'write')
  assert.deepEqual(route.packageDeleteWhen, { header: 'npm-command', value: 'deprecate' })
})

test('publicAccessFeatures as GitLab sets allow_public_access_for_enabled_project_features', () => {
  const byKey = new Map(loadCatalog().routes.map(r => [key(r), r]))
  const features = (k: string): readonly string[] | undefined => {
    assert.ok(byKey.has(k), `${k} is in the catalog`)
    return byKey.get(k)!.publicAccessFeatures
  }
  const registry = ['package_registry']
  assert.deepEqual(features('GET /packages/conan/v1/conans/:package_name/:package_version/:package_username/:package_channel'), registry)
  assert.deepEqual(features('GET /projects/:id/packages/conan/v2/conans/:package_name/:package_version/:package_username/:package_channel/revisions/:recipe_revision/files/:file_name'), registry)
  assert.deepEqual(features('GET /projects/:id/packages/npm/*package_name/-/*file_name'), registry)
  assert.deepEqual(features('GET /projects/:id/packages/generic/:package_name/*package_version/(*path/):file_name'), registry)
  assert.deepEqual(features('GET /projects/:id/packages/:package_id/package_files'), registry)
  assert.deepEqual(features('GET /projects/:id/packages/cargo/config.json'), registry)
  assert.deepEqual(features('GET /jobs/:id/artifacts'), ['repository', 'builds'])
  assert.deepEqual(features('GET /projects/:id/jobs/artifacts/:ref_name/raw/*artifact_path'), ['repository', 'builds'])
  assert.deepEqual(features('GET /projects/:id/releases/:tag_name'), ['repository', 'releases'])
  assert.deepEqual(features('GET /projects/:id/releases/:tag_name/assets/links'), ['releases'])
  assert.deepEqual(features('GET /projects/:id/merge_requests'), ['repository', 'merge_requests'])
  assert.deepEqual(features('GET /projects/:id/issues'), ['issues'])
  // GitLab's source sets none on these: writes, the job artifacts by job id, Composer archives.
  assert.equal(features('PUT /projects/:id/packages/generic/:package_name/*package_version/(*path/):file_name'), undefined)
  assert.equal(features('GET /projects/:id/jobs/:job_id/artifacts'), undefined)
  assert.equal(features('GET /projects/:id/packages/composer/archives/*package_name'), undefined)
  assert.equal(features('POST /projects/:id/releases'), undefined)
  // Every read route of the docs pages is accounted for: set, read without a setting, or not found.
  const accounted = new Set([...sourceFile.routeSettings, ...sourceFile.readWithoutSettings, ...sourceFile.notFound].map(key))
  for (const route of loadCatalog().routes) {
    if (route.authenticateWith === true || route.skipPolicies || route.policies.every(p => p.startsWith('admin_'))) continue
    assert.ok(accounted.has(key(route)), `${key(route)}: the source file says what GitLab sets, or that it was not found`)
  }
})

test('the container registry repositories API is self-only (job_token_scope: :project), and nothing else is', () => {
  const { routes } = loadCatalog()
  const scoped = routes.filter(r => r.jobTokenScope === 'project').map(key).sort()
  assert.deepEqual(scoped, routes.filter(r => r.pattern.startsWith('/projects/:id/registry/repositories')).map(key).sort())
  assert.equal(scoped.length, 6)
})

test('reads GitLab answers by a role\'s ability, and the routes that read no project, are marked in the catalog', () => {
  const { routes } = loadCatalog()
  const marked = (field: 'roleAbility' | 'readsNoProject'): Record<string, unknown> =>
    Object.fromEntries(routes.filter(r => r[field] !== undefined).map(r => [key(r), r[field]]))
  assert.deepEqual(marked('roleAbility'), {
    'GET /projects/:id/releases': 'read_code',
    'GET /projects/:id/releases/:tag_name': 'read_code',
    'GET /projects/:id/releases/:tag_name/downloads/*direct_asset_path': 'read_code',
    'GET /projects/:id/releases/permalink/latest(/)(*suffix_path)': 'read_code',
    'GET /projects/:id/environments': 'read_cluster_agent',
    'GET /projects/:id/packages/:package_id/package_files': 'read_pipeline',
    'GET /projects/:id/pipelines/:pipeline_id/jobs': 'read_pipeline',
    'GET /projects/:id/pipelines/:pipeline_id/bridges': 'read_pipeline'
  })
  assert.deepEqual(Object.keys(marked('readsNoProject')).sort(), [
    'GET /projects/:id/packages/conan/v1/ping',
    'GET /projects/:id/packages/conan/v1/users/authenticate',
    'GET /projects/:id/packages/conan/v1/users/check_credentials',
    'GET /projects/:id/packages/conan/v2/users/authenticate',
    'GET /projects/:id/packages/conan/v2/users/check_credentials'
  ])
})

test('the source file is refused, naming the row, when it disagrees with the pages or names no route', () => {
  const edit = (change: (doc: any) => void): { source: string, text: string } => {
    const doc = JSON.parse(SRC.text)
    change(doc)
    return { source: 'gitlab-source-routes.json', text: JSON.stringify(doc) }
  }
  const refused = (src: { source: string, text: string }, message: RegExp): void => {
    assert.throws(() => importPages([EN, JA, src]), (err: Error) => err instanceof ImportError && message.test(err.message))
  }
  refused(edit(d => { d.routeSettings.push({ method: 'GET', pattern: '/projects/:id/nothing', publicAccessFeatures: ['repository'], read: 'lib/api/x.rb' }) }),
    /routeSettings names GET \/projects\/:id\/nothing, which no source lists/)
  refused(edit(d => { d.routes.push({ method: 'GET', pattern: '/projects/:id/deployments', title: 't', resource: 'deployments', policies: [], credentials: ['job_token:http_basic_auth'], read: 'lib/api/x.rb' }) }),
    /GET \/projects\/:id\/deployments is already listed by fine-grained-permissions\.en\.md/)
  refused(edit(d => { d.routeSettings[0].publicAccessFeatures = ['wiki_pages'] }), /routeSettings\[0\]: publicAccessFeatures must list project features/)
  // Policies from the source replace only a route the pages list as unavailable.
  refused(edit(d => { d.routeSettings.push({ method: 'GET', pattern: '/projects/:id/deployments', policies: ['admin_deployments'], read: 'lib/api/x.rb' }) }),
    /GET \/projects\/:id\/deployments: policies only replace a route the pages list as unavailable/)
  refused(edit(d => { d.routeSettings[0].policies = [] }), /routeSettings\[0\]: policies must name at least one policy/)
  refused(edit(d => { d.routes[0].read = 'somewhere' }), /routes\[0\]: read must name the GitLab file/)
  refused(edit(d => { d.routes[0].credentials = [] }), /routes\[0\]: credentials must name where GitLab reads the job token/)
  refused(edit(d => { d.handlerTokenRoutes.push({ ...d.handlerTokenRoutes[0], pattern: '/projects/:id/deployments' }) }),
    /POST \/projects\/:id\/deployments is already listed by fine-grained-permissions\.en\.md; drop it from handlerTokenRoutes/)
  refused(edit(d => { d.notFound.push({ method: d.readWithoutSettings[0].method, pattern: d.readWithoutSettings[0].pattern }) }), /is in both readWithoutSettings and notFound/)
  refused(edit(d => { d.routeSettings.push({ method: 'GET', pattern: '/jobs/:id/artifacts', jobTokenScope: 'project', read: 'lib/api/x.rb' }) }),
    /jobTokenScope needs a \/projects\/:id route|is in both/)
  refused(edit(d => { d.routeSettings.push({ method: 'POST', pattern: '/projects/:id/releases', roleAbility: 'read_code', read: 'lib/api/x.rb' }) }),
    /POST \/projects\/:id\/releases: roleAbility only on a GET route/)
  refused(edit(d => { d.routeSettings.push({ method: 'GET', pattern: '/projects/:id/deployments', roleAbility: 'admin_code', read: 'lib/api/x.rb' }) }),
    /roleAbility must be an ability named read_<name>/)
  refused(edit(d => { d.routeSettings.push({ method: 'GET', pattern: '/packages/conan/v1/ping', readsNoProject: true, read: 'lib/api/x.rb' }) }),
    /GET \/packages\/conan\/v1\/ping: readsNoProject needs a \/projects\/:id route/)
  refused(edit(d => { d.routeSettings.push({ method: 'GET', pattern: '/projects/:id/deployments', readsNoProject: 'yes', read: 'lib/api/x.rb' }) }),
    /readsNoProject can only be true/)
  // A write acts on its project: its allowed requests are that project's usage.
  refused(edit(d => { d.routeSettings.push({ method: 'POST', pattern: '/projects/:id/releases', readsNoProject: true, read: 'lib/api/x.rb' }) }),
    /POST \/projects\/:id\/releases: readsNoProject only on a GET route/)
  // A field the importer does not know is refused, never dropped: misspelled, a setting that
  // narrows what a job may do would leave the catalog.
  const releases = (d: any): any => d.routeSettings.find((r: any) => r.method === 'GET' && r.pattern === '/projects/:id/releases')
  refused(edit(d => { const row = releases(d); row.roleAbilty = row.roleAbility; delete row.roleAbility }),
    /routeSettings\[\d+\]: unknown field "roleAbilty"/)
  refused(edit(d => { d.routeSettings.push({ method: 'GET', pattern: '/projects/:id/registry/repositories/:repository_id', job_token_scope: 'project', read: 'lib/api/x.rb' }) }),
    /routeSettings\[\d+\]: unknown field "job_token_scope"/)
  refused(edit(d => { d.routes[0].policy = ['read_packages'] }), /routes\[0\]: unknown field "policy"/)
  refused(edit(d => { d.handlerTokenRoutes[0].policies = ['admin_pipelines'] }), /handlerTokenRoutes\[0\]: unknown field "policies"/)
  refused(edit(d => { d.readWithoutSettings[0].publicAccessFeatures = ['repository'] }), /readWithoutSettings\[0\]: unknown field "publicAccessFeatures"/)
  refused(edit(d => { d.notFound[0].read = 'lib/api/x.rb' }), /notFound\[0\]: unknown field "read"/)
  // So is a section under another name: its rows would be read by no one.
  refused(edit(d => { d.routeSetting = [{ method: 'GET', pattern: '/projects/:id/releases', roleAbility: 'read_code', read: 'lib/api/x.rb' }] }),
    /unknown section "routeSetting"/)
  // A pipeline's read reaches the catalog only with the ability GitLab finds the pipeline by.
  refused(edit(d => { delete d.routeSettings.find((r: any) => r.pattern === '/projects/:id/pipelines/:pipeline_id/bridges').roleAbility }),
    /GET \/projects\/:id\/pipelines\/:pipeline_id\/bridges: a pipeline's route needs roleAbility "read_pipeline"/)
  refused(edit(d => { d.routes.push({ ...d.routes[0], pattern: '/groups/:id/-/packages/helm2/:channel/index.yaml' }) }),
    /GET \/groups\/:id\/-\/packages\/helm2\/:channel\/index\.yaml: no rule says how GitLab finds the project/)
})
