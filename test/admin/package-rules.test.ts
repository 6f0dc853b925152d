// Per package format rules: the catalog's derivation of format and operation, the pure check as a
// table, and enforcement through a real gate (self access included), and end to end across two
// gate replicas sharing one Redis.

import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import { packageFormatOf, packageOperationOf } from '../../src/catalog/import.ts'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import type { ProjectGrants } from '../../src/grants/model.ts'
import type { PackageRules } from '../../src/grants/package-rules-model.ts'
import { checkPackageRules, maintainerRequired } from '../../src/policy/package-check.ts'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { startRedis } from '../helpers/redis.ts'
import { ADMIN, USERS, adminGate } from '../helpers/admin-gate.ts'

const derivation: Array<[string, string, string | undefined, string | undefined]> = [
  ['PUT', '/projects/:id/packages/maven/*path/:file_name', 'maven', 'write'],
  ['PUT', '/projects/:id/packages/maven/*path/:file_name/authorize', 'maven', 'write'],
  ['GET', '/groups/:id/-/packages/maven/*path/:file_name', 'maven', 'read'],
  ['POST', '/projects/:id/packages/npm/-/npm/v1/security/audits/quick', 'npm', 'read'],
  ['DELETE', '/projects/:id/packages/npm/-/package/*package_name/dist-tags/:tag', 'npm', 'delete'],
  ['POST', '/projects/:id/packages/pypi', 'pypi', 'write'],
  ['GET', '/packages/conan/v1/ping', 'conan', 'read'],
  ['PUT', '/projects/:id/packages/terraform/modules/:module_name/:module_system/*module_version/file', 'terraform_module', 'write'],
  ['DELETE', '/projects/:id/packages/:package_id', 'any', 'delete'],
  ['GET', '/projects/:id/packages', 'any', 'read'],
  ['GET', '/projects/:id/releases', undefined, undefined],
  ['GET', '/projects/:id/terraform/state/:name', undefined, undefined]
]

for (const [method, pattern, format, operation] of derivation) {
  test(`catalog: ${method} ${pattern} is ${format ?? 'no package format'}`, () => {
    const f = packageFormatOf(pattern)
    assert.equal(f, format)
    if (f !== undefined) assert.equal(packageOperationOf(method as CatalogRoute['method'], pattern), operation)
  })
}

test('catalog: every package route of the committed catalog carries a format and an operation', () => {
  const { routes } = loadCatalog()
  // Maven virtual registries (/virtual_registries/packages/maven/...) proxy a group's upstreams: no project's packages.
  const pkg = routes.filter(r => r.resource === 'packages' || (r.pattern.includes('/packages/') && r.resource !== 'virtual_registries'))
  assert.ok(pkg.length > 100)
  for (const r of pkg) assert.ok(r.packageFormat !== undefined && r.packageOperation !== undefined, `${r.method} ${r.pattern}`)
  const maven = routes.find(r => r.method === 'PUT' && r.pattern === '/projects/:id/packages/maven/*path/:file_name')
  assert.deepEqual([maven?.packageFormat, maven?.packageOperation], ['maven', 'write'])
  assert.ok(!routes.some(r => r.resource === 'releases' && r.packageFormat !== undefined))
})

const route = (format: string, operation: 'read' | 'write' | 'delete'): CatalogRoute => ({
  id: 'x', method: 'GET', pattern: '/x', policies: [], skipPolicies: false, resource: 'packages', title: 'x', accessedProject: 'project', packageFormat: format, packageOperation: operation
})
const grants = (packageRules?: PackageRules): ProjectGrants => ({ projectId: 1, projectPath: 'a/b', inboundEnabled: true, entries: [], ...(packageRules === undefined ? {} : { packageRules }) })

const table: Array<[string, CatalogRoute, ProjectGrants | null, string | null]> = [
  ['no grants', route('maven', 'write'), null, null],
  ['no rules', route('maven', 'write'), grants(), null],
  ['other format configured', route('maven', 'write'), grants({ npm: { write: 'maintainer' } }), null],
  ['write maintainer', route('maven', 'write'), grants({ maven: { write: 'maintainer' } }), 'PACKAGE_MAINTAINER_ONLY'],
  ['write maintainer: delete follows', route('maven', 'delete'), grants({ maven: { write: 'maintainer' } }), 'PACKAGE_MAINTAINER_ONLY'],
  ['write maintainer: reads pass', route('maven', 'read'), grants({ maven: { write: 'maintainer' } }), null],
  ['job_token_and_maintainer', route('maven', 'write'), grants({ maven: { write: 'job_token_and_maintainer' } }), null],
  ['delete maintainer, write job tokens', route('maven', 'write'), grants({ maven: { write: 'job_token_and_maintainer', delete: 'maintainer' } }), null],
  ['delete maintainer', route('maven', 'delete'), grants({ maven: { write: 'job_token_and_maintainer', delete: 'maintainer' } }), 'PACKAGE_MAINTAINER_ONLY'],
  ['read false', route('npm', 'read'), grants({ npm: { read: false, write: 'maintainer' } }), 'PACKAGE_READ_DISABLED'],
  ['any: strictest read', route('any', 'read'), grants({ maven: { read: true }, npm: { read: false, write: 'maintainer' } }), 'PACKAGE_READ_DISABLED'],
  ['any: strictest delete', route('any', 'delete'), grants({ maven: { delete: 'maintainer' } }), 'PACKAGE_MAINTAINER_ONLY'],
  ['any: nothing strict', route('any', 'delete'), grants({ maven: { read: true } }), null]
]

for (const [name, r, g, expected] of table) {
  test(`package rules: ${name}`, () => {
    const verdict = checkPackageRules(r, g, 200)
    assert.equal(verdict.allow ? null : verdict.reason, expected)
    if (!verdict.allow) assert.match(verdict.message, /project #200/)
  })
}

const maintainerTable: Array<[string, CatalogRoute, ProjectGrants | null, boolean]> = [
  ['no rules', route('maven', 'write'), grants(), false],
  ['read only rule', route('maven', 'write'), grants({ maven: { read: true } }), false],
  ['write set (either level)', route('maven', 'write'), grants({ maven: { write: 'job_token_and_maintainer' } }), true],
  ['delete follows write', route('maven', 'delete'), grants({ maven: { write: 'maintainer' } }), true],
  ['delete set, write not', route('maven', 'write'), grants({ maven: { delete: 'maintainer' } }), false],
  ['reads never', route('maven', 'read'), grants({ maven: { write: 'maintainer' } }), false],
  ['any: some format sets delete', route('any', 'delete'), grants({ npm: { delete: 'maintainer' } }), true]
]

for (const [name, r, g, expected] of maintainerTable) {
  test(`users need the Maintainer role: ${name}`, () => {
    assert.equal(maintainerRequired(r, g), expected)
  })
}

const MAVEN_PUT = '/api/v4/projects/200/packages/maven/com/acme/lib/1.0/lib-1.0.jar'
const json = { 'content-type': 'application/json', 'private-token': ADMIN }

test('gate: a maven write rule refuses job tokens (self access included)', async t => {
  const g = await adminGate(t)
  const job = { 'job-token': TOKENS.lib }
  assert.equal((await send(g.url, 'PUT', MAVEN_PUT, job, 'jar')).status, 200, 'before: GitLab\'s behaviour')
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', json, JSON.stringify({ package_registry: { maven: { write: 'maintainer' }, npm: { read: false, write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const denied = await send(g.url, 'PUT', MAVEN_PUT, job, 'jar')
  assert.equal(denied.status, 403)
  assert.equal(denied.json().code, 'PACKAGE_MAINTAINER_ONLY')
  assert.match(denied.json().message, /maven packages of project #200/)
  assert.equal((await send(g.url, 'GET', MAVEN_PUT, job)).status, 200, 'maven reads still pass')
  const npmRead = await send(g.url, 'GET', '/api/v4/projects/200/packages/npm/left-pad', job)
  assert.equal(npmRead.status, 403)
  assert.equal(npmRead.json().code, 'PACKAGE_READ_DISABLED')
  const anyDelete = await send(g.url, 'DELETE', '/api/v4/projects/200/packages/5', job)
  assert.equal(anyDelete.json().code, 'PACKAGE_MAINTAINER_ONLY', 'the format-agnostic API applies the strictest rule')
  assert.equal((await send(g.url, 'PUT', '/api/v4/projects/200/packages/generic/p/1.0/f.bin', job, 'x')).status, 200, 'other formats unchanged')
})

test('gate: a write rule limits users\' writes to Maintainers (checked with GitLab); reads and other formats unchanged', async t => {
  const g = await adminGate(t)
  const dev = { 'private-token': USERS.developer }
  assert.equal((await send(g.url, 'PUT', MAVEN_PUT, dev, 'jar')).status, 200, 'before: GitLab\'s roles')
  await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', json, JSON.stringify({ package_registry: { maven: { write: 'job_token_and_maintainer' } } }))
  const denied = await send(g.url, 'PUT', MAVEN_PUT, dev, 'jar')
  assert.equal(denied.status, 403)
  assert.equal(denied.json().code, 'PACKAGE_MAINTAINER_ONLY')
  const basic = 'Basic ' + Buffer.from(`dev:${USERS.developer}`).toString('base64')
  assert.equal((await send(g.url, 'PUT', MAVEN_PUT, { authorization: basic }, 'jar')).status, 403, 'a PAT in Basic auth is checked too')
  assert.equal((await send(g.url, 'PUT', MAVEN_PUT, { 'deploy-token': 'gldt-deploy' }, 'jar')).status, 403, 'a deploy token is not a user')
  assert.equal((await send(g.url, 'PUT', MAVEN_PUT, { 'private-token': USERS.maintainer }, 'jar')).status, 200)
  assert.equal((await send(g.url, 'PUT', '/api/v4/projects/acme%2Flib/packages/maven/a/1/a.jar', { authorization: `Bearer ${USERS.owner}` }, 'jar')).status, 200, 'by path, group Owner')
  assert.equal((await send(g.url, 'GET', MAVEN_PUT, dev)).status, 200, 'reads unchanged')
  assert.equal((await send(g.url, 'PUT', '/api/v4/projects/200/packages/generic/p/1.0/f.bin', dev, 'x')).status, 200, 'other formats unchanged')
  assert.equal((await send(g.url, 'PUT', MAVEN_PUT, {}, 'jar')).status, 200, 'anonymous: left to GitLab')
  assert.equal((await send(g.url, 'PUT', MAVEN_PUT, { 'job-token': TOKENS.lib }, 'jar')).status, 200, 'job tokens allowed by job_token_and_maintainer')
  assert.equal(JSON.stringify(g.logs).includes(USERS.developer), false)
  g.gitlab.failWith.project = 500
  const down = await send(g.url, 'PUT', MAVEN_PUT, { 'private-token': 'glpat-not-cached-yet' }, 'jar')
  assert.equal(down.status, 503, 'GitLab cannot say: fail closed')
  assert.equal(down.json().code, 'ROLE_CHECK_UNAVAILABLE')
})

test('gate: shadow mode counts package-rule denies as would_deny', async t => {
  const g = await adminGate(t, { GATE_MODE: 'shadow' })
  await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', json, JSON.stringify({ package_registry: { maven: { write: 'maintainer' } } }))
  assert.equal((await send(g.url, 'PUT', MAVEN_PUT, { 'job-token': TOKENS.lib }, 'jar')).status, 200)
  assert.ok(g.logs.some(l => l.reason === 'PACKAGE_MAINTAINER_ONLY' && l.decision === 'would_deny'), 'logged as would_deny')
})

const redis = await startRedis({ after })

test('end to end: a PATCH on one replica makes the very next job-token maven PUT a 403 on every replica', async t => {
  const env = { GATE_REDIS_URL: redis.url }
  const a = await adminGate(t, env)
  const b = await adminGate(t, env)
  const job = { 'job-token': TOKENS.tools }
  // other/tools jobs get default permissions on acme/lib, through the API on replica A.
  const add = await send(a.url, 'POST', '/api/v4/projects/200/job_token_scope/allowlist', json, JSON.stringify({ target_project_id: 300 }))
  assert.equal(add.status, 201, add.text)
  // Both replicas allow and cache acme/lib's grants (cache TTL 10 s: only an invalidation can change them).
  assert.equal((await send(a.url, 'PUT', MAVEN_PUT, job, 'jar')).status, 200)
  assert.equal((await send(b.url, 'PUT', MAVEN_PUT, job, 'jar')).status, 200)
  assert.equal((await send(b.url, 'PUT', MAVEN_PUT, { 'job-token': TOKENS.lib }, 'jar')).status, 200)
  const patch = await send(a.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', json, JSON.stringify({ package_registry: { maven: { read: true, write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  for (const [name, gate] of [['A', a], ['B', b]] as const) {
    for (const token of [TOKENS.tools, TOKENS.lib]) {
      const res = await send(gate.url, 'PUT', MAVEN_PUT, { 'job-token': token }, 'jar')
      assert.equal(res.status, 403, `replica ${name}`)
      assert.equal(res.json().code, 'PACKAGE_MAINTAINER_ONLY')
    }
  }
  // The audit trail is in Redis, readable on the other replica.
  const audit = await send(b.url, 'GET', '/api/v4/projects/200/job_token_permissions/audit_events', { 'private-token': ADMIN })
  assert.equal(audit.headers['x-total'], '2')
  assert.equal(audit.json()[0].action, 'update_job_token_permissions')
})

test('configuration API: `__proto__` as a format or an action is refused as unknown, over REST and GraphQL, not dropped unsaid', async t => {
  const g = await adminGate(t)
  const json = { 'private-token': ADMIN, 'content-type': 'application/json' }
  for (const body of ['{"package_registry": {"__proto__": {"read": false, "write": "maintainer"}}}', '{"package_registry": {"maven": {"__proto__": {"write": "maintainer"}}}}']) {
    const res = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', json, body)
    assert.equal(res.status, 400, `${body}: ${res.text}`)
    assert.match(res.text, /__proto__/, body)
  }
  const graphql = await send(g.url, 'POST', '/api/graphql', json, JSON.stringify({ query: 'mutation { updateJobTokenPermissions(input: {projectPath: "acme/lib", packageRegistry: [{format: "__proto__", read: false}]}) { errors } }' }))
  assert.match(graphql.text, /__proto__/, graphql.text)
  assert.doesNotMatch(graphql.text, /twice/, graphql.text)
  const stored = await send(g.url, 'GET', '/api/v4/projects/200/job_token_permissions', { 'private-token': ADMIN })
  assert.doesNotMatch(stored.text, /"configured":true/, `nothing stored: ${stored.text}`)
})
