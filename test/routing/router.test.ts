import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import { API_PREFIX, canonicalize, createCanonicalizer } from '../../src/routing/canonical.ts'
import { Router, type RouteMatch } from '../../src/routing/router.ts'
import { accessedProject } from '../../src/routing/accessed.ts'
import { generateCorpus } from '../helpers/corpus.ts'

const router = Router.compile(loadCatalog().routes)
// As the gate builds it: mounted where canonicalize() puts the API, matched by whole paths.
const mounted = Router.compile(loadCatalog().routes, { mount: API_PREFIX })

interface Case { name: string, method: string, target: string, route: string | null, params?: Record<string, string>, format?: boolean }

// Targets are raw request targets: each goes through canonicalize first, as in the gate.
const cases: Case[] = [
  { name: 'npm tarball with scoped name and project path', method: 'GET', target: '/api/v4/projects/my-group%2Fapp/packages/npm/@acme%2fcli/-/@acme/cli-1.0.0.tgz', route: 'get_projects_id_packages_npm_package_name_file_name', params: { id: 'my-group/app', package_name: '@acme/cli', file_name: '@acme/cli-1.0.0.tgz' } },
  { name: 'npm metadata, %40 decoded before matching', method: 'GET', target: '/api/v4/projects/42/packages/npm/%40acme%2Fcli', route: 'get_projects_id_packages_npm_package_name', params: { id: '42', package_name: '@acme/cli' } },
  { name: 'npm dist-tags: static "-" beats the glob', method: 'GET', target: '/api/v4/projects/42/packages/npm/-/package/@acme%2fcli/dist-tags', route: 'get_projects_id_packages_npm_package_package_name_dist_tags', params: { id: '42', package_name: '@acme/cli' } },
  { name: 'group npm metadata', method: 'GET', target: '/api/v4/groups/7/-/packages/npm/@acme%2fcli', route: 'get_groups_id_packages_npm_package_name', params: { id: '7', package_name: '@acme/cli' } },
  { name: 'group npm dist-tags needs read_packages', method: 'GET', target: '/api/v4/groups/7/-/packages/npm/-/package/@acme%2fcli/dist-tags', route: 'get_groups_id_packages_npm_package_package_name_dist_tags' },
  { name: 'static pypi/simple beats :package_id', method: 'GET', target: '/api/v4/projects/42/packages/pypi/simple', route: 'get_projects_id_packages_pypi_simple', params: { id: '42' } },
  { name: 'pypi simple package with trailing slash', method: 'GET', target: '/api/v4/projects/42/packages/pypi/simple/my-package/', route: 'get_projects_id_packages_pypi_simple_package_name', params: { id: '42', package_name: 'my-package' } },
  { name: 'project package by id', method: 'GET', target: '/api/v4/projects/42/packages/5', route: 'get_projects_id_packages_package_id', params: { id: '42', package_id: '5' }, format: false },
  { name: '.json format after an integer id', method: 'GET', target: '/api/v4/projects/42/packages/5.json', route: 'get_projects_id_packages_package_id', params: { id: '42', package_id: '5' }, format: true },
  { name: '.json format after a static segment', method: 'GET', target: '/api/v4/projects/42/deployments.json', route: 'get_projects_id_deployments', params: { id: '42' }, format: true },
  { name: '.json format picks the static route over the integer parameter', method: 'DELETE', target: '/api/v4/projects/42/environments/review_apps.json', route: 'delete_projects_id_environments_review_apps', format: true },
  // Grape takes any extension as the format (`(.:format)`, GitLab's two content types): `1.5` is deployment 1, format "5".
  { name: 'an integer id\'s dot starts the format', method: 'GET', target: '/api/v4/projects/42/deployments/1.5', route: 'get_projects_id_deployments_deployment_id', params: { id: '42', deployment_id: '1' }, format: true },
  { name: 'any extension after an integer id is the format', method: 'DELETE', target: '/api/v4/projects/42/packages/5.xml', route: 'delete_projects_id_packages_package_id', params: { id: '42', package_id: '5' }, format: true },
  { name: 'an escaped dot is a format too (canonical: decoded)', method: 'DELETE', target: '/api/v4/projects/42/packages/5.%2E', route: 'delete_projects_id_packages_package_id', params: { id: '42', package_id: '5' }, format: true },
  { name: 'an extension holding an escaped slash is the format', method: 'DELETE', target: '/api/v4/projects/42/packages/5.%2F', route: 'delete_projects_id_packages_package_id', params: { id: '42', package_id: '5' }, format: true },
  { name: 'any extension after a static segment is the format', method: 'GET', target: '/api/v4/projects/42/deployments.txt', route: 'get_projects_id_deployments', params: { id: '42' }, format: true },
  { name: 'a format of many escaped dots: the first dot ends the integer id', method: 'DELETE', target: '/api/v4/projects/42/packages/5.' + '%2E'.repeat(40), route: 'delete_projects_id_packages_package_id', params: { id: '42', package_id: '5' }, format: true },
  { name: 'a literal with dots before the format (the last dots are tried first)', method: 'GET', target: '/api/v4/projects/42/debian_distributions/stable/key.asc.%2E%2E', route: 'get_projects_id_debian_distributions_codename_key_asc', params: { id: '42', codename: 'stable' }, format: true },
  { name: 'an integer id with no digits before the dot is no route', method: 'GET', target: '/api/v4/projects/42/deployments/.5', route: null },
  { name: 'a dotted tag name keeps .json', method: 'GET', target: '/api/v4/projects/42/releases/v1.json', route: 'get_projects_id_releases_tag_name', params: { id: '42', tag_name: 'v1.json' }, format: false },
  { name: 'release tag with an encoded slash', method: 'GET', target: '/api/v4/projects/42/releases/release%2Fv1.2.3', route: 'get_projects_id_releases_tag_name', params: { id: '42', tag_name: 'release/v1.2.3' } },
  { name: 'double-encoded slash is decoded once', method: 'GET', target: '/api/v4/projects/42/releases/a%252Fb', route: 'get_projects_id_releases_tag_name', params: { id: '42', tag_name: 'a%2Fb' } },
  { name: 'latest release permalink', method: 'GET', target: '/api/v4/projects/42/releases/permalink/latest', route: 'get_projects_id_releases_permalink_latest_suffix_path', params: { id: '42' } },
  { name: 'latest release permalink with suffix', method: 'GET', target: '/api/v4/projects/42/releases/permalink/latest/downloads/bin/app', route: 'get_projects_id_releases_permalink_latest_suffix_path', params: { id: '42', suffix_path: 'downloads/bin/app' } },
  { name: 'latest release permalink with a glued suffix (Mustermann matches it)', method: 'GET', target: '/api/v4/projects/42/releases/permalink/latestfoo', route: 'get_projects_id_releases_permalink_latest_suffix_path', params: { id: '42', suffix_path: 'foo' } },
  { name: 'maven project file', method: 'GET', target: '/api/v4/projects/42/packages/maven/com/example/app/1.0/app-1.0.jar', route: 'get_projects_id_packages_maven_path_file_name', params: { id: '42', path: 'com/example/app/1.0', file_name: 'app-1.0.jar' } },
  { name: 'maven upload authorize', method: 'PUT', target: '/api/v4/projects/42/packages/maven/com/example/app/1.0/app-1.0.jar/authorize', route: 'put_projects_id_packages_maven_path_file_name_authorize', params: { id: '42', path: 'com/example/app/1.0', file_name: 'app-1.0.jar' } },
  { name: 'maven instance level', method: 'GET', target: '/api/v4/packages/maven/com/example/app/1.0/app-1.0.pom', route: 'get_packages_maven_path_file_name' },
  { name: 'go module list with !-escaped path', method: 'GET', target: '/api/v4/projects/42/packages/go/example.com/!my!org/lib/@v/list', route: 'get_projects_id_packages_go_module_name_v_list', params: { id: '42', module_name: 'example.com/!my!org/lib' } },
  { name: 'go .mod file: literal suffix after a parameter', method: 'GET', target: '/api/v4/projects/42/packages/go/example.com/lib/@v/v1.2.3.mod', route: 'get_projects_id_packages_go_module_name_v_module_version_mod', params: { id: '42', module_name: 'example.com/lib', module_version: 'v1.2.3' } },
  { name: 'go @v written %40v', method: 'GET', target: '/api/v4/projects/42/packages/go/example.com/lib/%40v/v1.2.3.zip', route: 'get_projects_id_packages_go_module_name_v_module_version_zip' },
  { name: 'generic package file without path', method: 'GET', target: '/api/v4/projects/42/packages/generic/tool/1.2.3/tool.tar.gz', route: 'get_projects_id_packages_generic_package_name_package_version_path_file_name', params: { id: '42', package_name: 'tool', package_version: '1.2.3', file_name: 'tool.tar.gz' } },
  { name: 'generic package file with path', method: 'GET', target: '/api/v4/projects/42/packages/generic/tool/1.2.3/linux/amd64/tool', route: 'get_projects_id_packages_generic_package_name_package_version_path_file_name', params: { id: '42', package_name: 'tool', package_version: '1.2.3', path: 'linux/amd64', file_name: 'tool' } },
  { name: 'generic upload authorize beats upload of a file named authorize', method: 'PUT', target: '/api/v4/projects/42/packages/generic/tool/1.2.3/tool/authorize', route: 'put_projects_id_packages_generic_package_name_package_version_path_file_name_authorize' },
  { name: 'conan instance recipe digest with _/_ user and channel', method: 'GET', target: '/api/v4/packages/conan/v1/conans/pkg/1.0/_/_/digest', route: 'get_packages_conan_v1_conans_package_name_package_version_package_username_package_channel_digest', params: { package_name: 'pkg', package_version: '1.0', package_username: '_', package_channel: '_' } },
  { name: 'conan search is static, not a package name', method: 'GET', target: '/api/v4/projects/42/packages/conan/v1/conans/search', route: 'get_projects_id_packages_conan_v1_conans_search' },
  { name: 'terraform state with dots', method: 'POST', target: '/api/v4/projects/42/terraform/state/prod.us-east-1/lock', route: 'post_projects_id_terraform_state_name_lock', params: { id: '42', name: 'prod.us-east-1' } },
  { name: 'HEAD is routed as GET', method: 'HEAD', target: '/api/v4/projects/42/packages', route: 'get_projects_id_packages' },
  { name: '%2D decoded before matching', method: 'GET', target: '/api/v4/projects/42/packages/npm/%2D/package/x/dist%2Dtags', route: 'get_projects_id_packages_npm_package_package_name_dist_tags' },
  { name: 'duplicate and trailing slashes', method: 'GET', target: '//api//v4/projects//42//deployments/', route: 'get_projects_id_deployments' },
  { name: 'own job', method: 'GET', target: '/api/v4/job', route: 'get_job' },
  { name: 'artifacts by a one-segment ref', method: 'GET', target: '/api/v4/projects/42/jobs/artifacts/main/download?job=build', route: 'get_projects_id_jobs_artifacts_ref_name_download', params: { id: '42', ref_name: 'main' } },
  { name: 'artifacts by a ref with a raw "/" (ref_name: /.+/)', method: 'GET', target: '/api/v4/projects/42/jobs/artifacts/feature/x/download', route: 'get_projects_id_jobs_artifacts_ref_name_download', params: { id: '42', ref_name: 'feature/x' }, format: false },
  { name: 'artifacts by a ref with a raw "/", .json format', method: 'GET', target: '/api/v4/projects/acme%2Fapp/jobs/artifacts/release/1.x/download.json', route: 'get_projects_id_jobs_artifacts_ref_name_download', params: { id: 'acme/app', ref_name: 'release/1.x' }, format: true },
  { name: 'an artifact file by a ref with a raw "/"', method: 'GET', target: '/api/v4/projects/42/jobs/artifacts/feature/x/raw/dist/app.js', route: 'get_projects_id_jobs_artifacts_ref_name_raw_artifact_path', params: { id: '42', ref_name: 'feature/x', artifact_path: 'dist/app.js' } },
  { name: 'GitLab tries the archive route first: a path ending in /download is the archive', method: 'GET', target: '/api/v4/projects/42/jobs/artifacts/a/raw/b/download', route: 'get_projects_id_jobs_artifacts_ref_name_download', params: { id: '42', ref_name: 'a/raw/b' } },
  { name: 'the archive route takes any format before the raw file route does', method: 'GET', target: '/api/v4/projects/42/jobs/artifacts/a/raw/b/download.xml', route: 'get_projects_id_jobs_artifacts_ref_name_download', params: { id: '42', ref_name: 'a/raw/b' }, format: true },
  { name: 'an escaped dot before the archive route\'s format too', method: 'GET', target: '/api/v4/projects/42/jobs/artifacts/a/raw/b/download%2Etxt', route: 'get_projects_id_jobs_artifacts_ref_name_download', params: { id: '42', ref_name: 'a/raw/b' }, format: true },
  { name: 'no format after the dot: a file of the ref before /raw/', method: 'GET', target: '/api/v4/projects/42/jobs/artifacts/a/raw/b/download.', route: 'get_projects_id_jobs_artifacts_ref_name_raw_artifact_path', params: { id: '42', ref_name: 'a', artifact_path: 'b/download.' } },
  { name: 'an artifact file by ref stays the raw route', method: 'GET', target: '/api/v4/projects/42/jobs/artifacts/main/raw/dist/app.js', route: 'get_projects_id_jobs_artifacts_ref_name_raw_artifact_path', params: { id: '42', ref_name: 'main', artifact_path: 'dist/app.js' } },
  { name: 'artifacts by ref are GET routes only', method: 'DELETE', target: '/api/v4/projects/42/jobs/artifacts/feature/x/download', route: null },
  { name: 'job artifacts by job id', method: 'GET', target: '/api/v4/jobs/99/artifacts', route: 'get_jobs_id_artifacts', params: { id: '99' } },
  { name: 'case matters', method: 'GET', target: '/api/v4/projects/42/Packages', route: null },
  { name: 'wrong method', method: 'DELETE', target: '/api/v4/projects/42/packages/pypi/simple', route: null },
  { name: 'unknown method', method: 'OPTIONS', target: '/api/v4/projects/42/packages', route: null },
  { name: 'route GitLab does not open to job tokens', method: 'GET', target: '/api/v4/projects/42/variables', route: null },
  { name: 'missing segment', method: 'GET', target: '/api/v4/projects/42/packages/npm/-/package/x', route: 'get_projects_id_packages_npm_package_name' },
  { name: 'API root', method: 'GET', target: '/api/v4', route: null }
]

for (const c of cases) {
  test(`route: ${c.name}`, () => {
    const canonical = canonicalize(c.method, c.target)
    assert.equal(canonical.kind, 'api', `canonicalize(${c.target}) should be an API path`)
    if (canonical.kind !== 'api') return
    const match = router.match(canonical.method, canonical.apiPath)
    assert.equal(match?.route.id ?? null, c.route)
    if (c.params !== undefined) assert.deepEqual({ ...match?.params }, c.params)
    if (c.format !== undefined) assert.equal(match?.format, c.format)
    assert.deepEqual(plain(mounted.matchRequest(canonical)), plain(match))
    assert.deepEqual(plain(mounted.match(canonical.method, canonical.apiPath)), plain(match))
  })
}

const plain = (m: RouteMatch | null): unknown => m === null ? null : { route: m.route.id, params: { ...m.params }, format: m.format }

test('a router mounted at the API matches every corpus request by its whole path as the unmounted one by its API path', () => {
  const routes = loadCatalog().routes
  const underRoot = Router.compile(routes, { mount: '/gitlab' + API_PREFIX })
  const canonicalizeUnderRoot = createCanonicalizer({ relativeUrlRoot: '/gitlab' })
  let compared = 0
  for (const entry of generateCorpus(routes)) {
    const canonical = canonicalize(entry.method, API_PREFIX + entry.path)
    if (canonical.kind !== 'api') continue
    const expected = plain(router.match(canonical.method, canonical.apiPath))
    assert.deepEqual(plain(mounted.matchRequest(canonical)), expected, `${entry.method} ${entry.path}`)
    const rooted = canonicalizeUnderRoot(entry.method, '/gitlab' + API_PREFIX + entry.path)
    assert.equal(rooted.kind, 'api')
    if (rooted.kind === 'api') assert.deepEqual(plain(underRoot.matchRequest(rooted)), expected, `/gitlab ${entry.method} ${entry.path}`)
    compared++
  }
  assert.ok(compared > 1000, `only ${compared} corpus requests compared`)
})

test('a relative URL root holding find-my-way\'s own characters or escapes is matched by API path, as any other', () => {
  for (const root of ['/git:lab', '/git*lab', '/git(lab)', '/my%20gitlab', '/caf%C3%A9']) {
    const rooted = Router.compile(loadCatalog().routes, { mount: root + API_PREFIX })
    const canonical = createCanonicalizer({ relativeUrlRoot: root })('GET', root + API_PREFIX + '/projects/42/deployments/7')
    assert.equal(canonical.kind, 'api', root)
    if (canonical.kind === 'api') assert.deepEqual(plain(rooted.matchRequest(canonical)), { route: 'get_projects_id_deployments_deployment_id', params: { id: '42', deployment_id: '7' }, format: false }, root)
  }
})

test('a mounted router answers a request under another root, or the API root itself, by its API path', () => {
  const apiPath = '/projects/42/deployments'
  // A canonical form from a canonicalizer with a root the router is not mounted under.
  const elsewhere = { method: 'GET', path: '/other' + API_PREFIX + apiPath, apiPath }
  assert.equal(mounted.matchRequest(elsewhere)?.route.id, 'get_projects_id_deployments')
  const samePathLength = { method: 'GET', path: '/xpi/v4' + apiPath, apiPath }
  assert.equal(mounted.matchRequest(samePathLength)?.route.id, 'get_projects_id_deployments')
  const root = canonicalize('GET', API_PREFIX)
  assert.equal(root.kind === 'api' ? root.apiPath : null, '/')
  if (root.kind === 'api') assert.equal(mounted.matchRequest(root), router.match('GET', '/'))
})

test('a match carries the policies the route needs', () => {
  const match = router.match('POST', '/projects/42/deployments')
  assert.deepEqual(match?.route.policies, ['admin_deployments', 'admin_environments'])
  assert.equal(match?.route.skipPolicies, false)
  assert.equal(router.match('GET', '/projects/42/registry/repositories')?.route.skipPolicies, true)
})

test('every catalog route is reachable by a path built from its pattern', () => {
  for (const route of router.routes) {
    const path = route.pattern
      .replace(/\(\/\)\(\*suffix_path\)$/, '')
      .replace(/\(\*path\/\)/, '')
      .replace(/\(ref\/\*ref\/\)/, 'ref/feature/x/')
      .replace(/:module_version\.(mod|zip|info)/, 'v1.0.0.$1')
      .replace(/[:*][a-z0-9_]+/g, name => name === ':id' ? '42' : name.endsWith('_id') || name.endsWith('_iid') || name === ':serial' ? '7' : 'x')
    assert.equal(router.match(route.method, path)?.route.id, route.id, `${route.method} ${path}`)
  }
})

test('the accessed project comes from :id, job id, or nowhere', () => {
  const at = (method: string, path: string): unknown => accessedProject(router.match(method, path)!)
  assert.deepEqual(at('GET', '/projects/0042/packages'), { kind: 'project_id', id: 42 })
  assert.deepEqual(at('GET', '/projects/my-group%2Fapp/packages'), { kind: 'project_path', path: 'my-group/app' })
  assert.deepEqual(at('GET', '/jobs/99/artifacts'), { kind: 'job', jobId: 99 })
  assert.deepEqual(at('GET', '/job'), { kind: 'token_job' })
  assert.deepEqual(at('GET', '/groups/acme/-/packages/maven/com/x/1/x.jar'), { kind: 'unknown', scope: 'group', group: 'acme' })
  assert.deepEqual(at('GET', '/packages/maven/com/x/1/x.jar'), { kind: 'unknown', scope: 'instance' })
})
