// Finding: a project's package rules keeping deletes to Maintainers (`delete: "maintainer"`) bound
// `DELETE /projects/:id/packages/...` only, while GitLab's GraphQL deletes the same packages
// (destroyPackage, destroyPackages, destroyPackageFile, destroyPackageFiles), which its package
// registry pages send with the browser session: a Developer's token or session deleted packages
// the project keeps to Maintainers. destroyPackageFiles is now held to its projectPath's
// strictest delete rule, destroyPackage(s) to the rule of each package's project and format as
// GitLab shows them to the service token, and destroyPackageFile, whose project no API finds, is
// refused to users.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { gateWithPackageRule, adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import type { TestGate } from '../helpers/gate.ts'
import type { FakePackage } from '../helpers/fake-gitlab.ts'

const json = { 'content-type': 'application/json' }
const session = (token: string): Record<string, string> => ({ cookie: `_gitlab_session=${token}`, 'x-csrf-token': 'csrf' })
const pkg = (id: number): string => `gid://gitlab/Packages::Package/${id}`
const FILE = 'gid://gitlab/Packages::PackageFile/9'

// acme/lib (200): an npm package (1), a PyPI package (2), an npm package in error (3);
// acme/platform/app (100), without rules: an npm package (4).
const PACKAGES: FakePackage[] = [
  { id: 1, name: 'left-pad', version: '1.0.0', packageType: 'npm', projectId: 200, createdAt: '2026-01-01T00:00:00Z' },
  { id: 2, name: 'requests', version: '2.0.0', packageType: 'pypi', projectId: 200, createdAt: '2026-01-01T00:00:00Z' },
  { id: 3, name: 'broken', version: '0.1.0', packageType: 'npm', projectId: 200, createdAt: '2026-01-01T00:00:00Z', status: 'error' },
  { id: 4, name: 'app-lib', version: '1.0.0', packageType: 'npm', projectId: 100, createdAt: '2026-01-01T00:00:00Z' }
]

const world = async (t: TestContext, rule: Record<string, string> = { delete: 'maintainer' }): Promise<TestGate> => {
  const g = await gateWithPackageRule(t, 'npm', rule)
  g.gitlab.packages.push(...PACKAGES)
  return g
}

const graphql = async (g: TestGate, headers: Record<string, string>, body: unknown): Promise<{ status: number, code: unknown, text: string }> => {
  const res = await send(g.url, 'POST', '/api/graphql', { ...json, ...headers }, typeof body === 'string' ? body : JSON.stringify(body))
  let code: unknown
  try { code = res.json().code } catch {}
  return { status: res.status, code, text: res.text }
}
const forwarded = (g: TestGate, before: number): number => g.seen.slice(before).filter(s => s.url.startsWith('/api/graphql')).length

const FILES = 'mutation { destroyPackageFiles(input: {projectPath: "acme/lib", ids: ["gid://gitlab/Packages::PackageFile/9"]}) { errors } }'
const FILES_BY_PATH: ReadonlyArray<readonly [string, unknown]> = [
  ['a literal projectPath', { query: FILES }],
  ['the input in a variable', { query: 'mutation M($input: DestroyPackageFilesInput!) { destroyPackageFiles(input: $input) { errors } }', variables: { input: { projectPath: 'ACME/Lib', ids: [FILE] } } }],
  ['projectPath in a variable, given as a JSON string', { query: 'mutation M($p: ID!, $ids: [PackagesPackageFileID!]!) { destroyPackageFiles(input: {projectPath: $p, ids: $ids}) { errors } }', variables: JSON.stringify({ p: 'acme/lib', ids: [FILE] }) }],
  ['a variable\'s default, through a fragment and an alias', { query: 'mutation M($p: ID! = "acme/lib") { ...F } fragment F on Mutation { d: destroyPackageFiles(input: {projectPath: $p, ids: []}) { errors } }' }],
  ['one operation of a batch', [{ query: '{ currentUser { id } }' }, { query: FILES }]]
]
const BY_ID: ReadonlyArray<readonly [string, unknown]> = [
  ['destroyPackage', { query: `mutation { destroyPackage(input: {id: "${pkg(1)}"}) { errors } }` }],
  ['destroyPackage, the id in a variable', { query: 'mutation M($id: PackagesPackageID!) { destroyPackage(input: {id: $id}) { errors } }', variables: { id: pkg(1) } }],
  ['destroyPackages, one of its ids', { query: 'mutation M($ids: [PackagesPackageID!]!) { destroyPackages(input: {ids: $ids}) { errors } }', variables: { ids: [pkg(4), pkg(1)] } }],
  ['destroyPackages, a single id taken as a list', { query: `mutation { x: destroyPackages(input: {ids: "${pkg(1)}"}) { errors } }` }]
]

test('a Developer\'s GraphQL package deletes are held to the project\'s delete rule, by token or session', async t => {
  const g = await world(t)
  const before = g.seen.length
  for (const [name, body] of [...FILES_BY_PATH, ...BY_ID]) {
    for (const [caller, headers] of [['token', { 'private-token': USERS.developer }], ['session', session(USERS.developer)]] as const) {
      const res = await graphql(g, headers, body)
      assert.equal(res.status, 403, `${name} (${caller}): ${res.text}`)
      assert.equal(res.code, 'PACKAGE_MAINTAINER_ONLY', `${name} (${caller})`)
    }
  }
  assert.equal(forwarded(g, before), 0, 'no delete reached GitLab')
  // A Maintainer's go to GitLab.
  for (const [name, body] of [...FILES_BY_PATH, ...BY_ID]) {
    const res = await graphql(g, { 'private-token': USERS.maintainer }, body)
    assert.equal(res.status, 200, `${name}: ${res.text}`)
  }
  assert.equal(forwarded(g, before), FILES_BY_PATH.length + BY_ID.length)
})

test('a package by id is held to the rule of its own project and format', async t => {
  const g = await world(t)
  const before = g.seen.length
  const passes: ReadonlyArray<readonly [string, unknown]> = [
    ['a package of a project without rules', { query: `mutation { destroyPackage(input: {id: "${pkg(4)}"}) { errors } }` }],
    ['a PyPI package where only npm deletes are kept to Maintainers', { query: `mutation { destroyPackages(input: {ids: ["${pkg(2)}", "${pkg(4)}"]}) { errors } }` }],
    ['package files of a project without rules', { query: 'mutation { destroyPackageFiles(input: {projectPath: "acme/platform/app", ids: []}) { errors } }' }],
    ['a query', { query: `{ package(id: "${pkg(1)}") { name } }` }]
  ]
  for (const [name, body] of passes) {
    const res = await graphql(g, { 'private-token': USERS.developer }, body)
    assert.equal(res.status, 200, `${name}: ${res.text}`)
  }
  assert.equal(forwarded(g, before), passes.length)
  // One lookup per distinct package, none for the query.
  assert.equal(g.gitlab.packageQueryCalls, 3)
})

test('destroyPackageFiles: the strictest delete rule of any format applies', async t => {
  const g = await gateWithPackageRule(t, 'conan', { write: 'maintainer' })
  const res = await graphql(g, { 'private-token': USERS.developer }, { query: FILES })
  assert.equal(res.status, 403, res.text)
  assert.equal(res.code, 'PACKAGE_MAINTAINER_ONLY')
})

test('what the gate cannot place is refused: a file by id, a package GitLab does not show, GitLab failing', async t => {
  const g = await world(t)
  const before = g.seen.length
  const uncertain: ReadonlyArray<readonly [string, Record<string, string>, unknown]> = [
    ['destroyPackageFile (a Developer)', { 'private-token': USERS.developer }, { query: `mutation { destroyPackageFile(input: {id: "${FILE}"}) { errors } }` }],
    ['destroyPackageFile (a Maintainer)', { 'private-token': USERS.maintainer }, { query: `mutation { destroyPackageFile(input: {id: "${FILE}"}) { errors } }` }],
    ['a package in error, which package(id:) does not show', { 'private-token': USERS.developer }, { query: `mutation { destroyPackage(input: {id: "${pkg(3)}"}) { errors } }` }],
    ['no such package', session(USERS.maintainer), { query: `mutation { destroyPackage(input: {id: "${pkg(999)}"}) { errors } }` }],
    ['an id that is no package\'s', { 'private-token': USERS.developer }, { query: 'mutation { destroyPackage(input: {id: "gid://gitlab/Project/200"}) { errors } }' }]
  ]
  for (const [name, headers, body] of uncertain) {
    const res = await graphql(g, headers, body)
    assert.equal(res.status, 403, `${name}: ${res.text}`)
    assert.equal(res.code, 'PACKAGE_PROJECT_UNCERTAIN', name)
  }
  g.gitlab.serviceHidden.add(200)
  const hidden = await graphql(g, { 'private-token': USERS.developer }, BY_ID[0]![1])
  assert.equal(hidden.code, 'PACKAGE_PROJECT_UNCERTAIN', 'a package the service token does not see')
  g.gitlab.serviceHidden.clear()
  g.gitlab.packageQueryFailWith = 500
  const failing = await graphql(g, { 'private-token': USERS.developer }, BY_ID[0]![1])
  assert.equal(failing.status, 502, failing.text)
  assert.equal(failing.code, 'PROJECT_LOOKUP_FAILED')
  assert.equal(forwarded(g, before), 0)
})

test('the lookups are bounded, and nothing is asked for a request no one could be signed in with', async t => {
  const g = await world(t)
  const before = g.seen.length
  const many = Array.from({ length: 21 }, (_, i) => pkg(1000 + i))
  const res = await graphql(g, { 'private-token': USERS.maintainer }, { query: 'mutation M($ids: [PackagesPackageID!]!) { destroyPackages(input: {ids: $ids}) { errors } }', variables: { ids: many } })
  assert.equal(res.status, 400, res.text)
  assert.equal(res.code, 'GRAPHQL_TOO_MANY_PACKAGES')
  // The same ids repeated, across mutations and readings, are asked once.
  const twice = await graphql(g, { 'private-token': USERS.maintainer }, [{ query: `mutation { a: destroyPackage(input: {id: "${pkg(1)}"}) { errors } b: destroyPackages(input: {ids: ["${pkg(1)}", "${pkg(1)}"]}) { errors } }` }])
  assert.equal(twice.status, 200, twice.text)
  assert.equal(g.gitlab.packageQueryCalls, 1)
  // No credential: GitLab deletes nothing, and the gate asks nothing.
  const anonymous = await graphql(g, {}, { query: 'mutation M($ids: [PackagesPackageID!]!) { destroyPackages(input: {ids: $ids}) { errors } }', variables: { ids: many } })
  assert.equal(anonymous.status, 200, anonymous.text)
  assert.equal(g.gitlab.packageQueryCalls, 1)
  assert.equal(forwarded(g, before), 2)
})

test('a package delete the gate cannot read is refused', async t => {
  const g = await world(t)
  const unreadable: ReadonlyArray<readonly [string, unknown]> = [
    ['projectPath not text', { query: 'mutation { destroyPackageFiles(input: {projectPath: ["acme/lib"], ids: []}) { errors } }' }],
    ['a variable not given', { query: 'mutation M($id: PackagesPackageID!) { destroyPackage(input: {id: $id}) { errors } }' }],
    ['an id that is not text', { query: 'mutation M($ids: [PackagesPackageID!]!) { destroyPackages(input: {ids: $ids}) { errors } }', variables: { ids: [1] } }],
    ['a document that does not parse', { query: `mutation { destroyPackage(input: {id: "${pkg(1)}"} { errors } }` }]
  ]
  for (const [name, body] of unreadable) {
    const res = await graphql(g, { 'private-token': USERS.developer }, body)
    assert.equal(res.status, 400, `${name}: ${res.text}`)
    assert.equal(res.code, 'GRAPHQL_NOT_INSPECTABLE', name)
  }
})

test('a body over 1 MiB naming a package delete is refused, before or after the limit', async t => {
  const g = await world(t)
  const padding = ' '.repeat(1 << 20)
  for (const [name, text] of [['first', JSON.stringify({ query: FILES + padding })], ['past the limit', JSON.stringify({ query: padding + FILES })]] as const) {
    const res = await graphql(g, { 'private-token': USERS.developer }, text)
    assert.equal(res.status, 413, `${name}: ${res.text.slice(0, 300)}`)
  }
})

test('a multipart type only Workhorse reads (Go trims Unicode white space) is refused, whatever its size', async t => {
  const g = await world(t)
  const before = g.seen.length
  // Workhorse hands Rails these parts under a multipart/form-data of its own, and decodes the
  // quoted-printable `destroy=50ackage`; Rack parses no body of a type led by a no-break space.
  const type = Buffer.from('\u00a0multipart/form-data; boundary=b0').toString('latin1')
  const part = (head: string, value: string): string => `--b0\r\nContent-Disposition: form-data; ${head}\r\n\r\n${value}\r\n`
  const operations = `name="operations"\r\nContent-Transfer-Encoding: quoted-printable`
  const parts = part(operations, JSON.stringify(BY_ID[0]![1]).replace('destroyPackage', 'destroy=50ackage')) + part('name="map"', '{}')
  for (const body of [parts, parts + part('name="f"; filename="a.bin"', 'x'.repeat(1200 * 1024))]) {
    const res = await send(g.url, 'POST', '/api/graphql', { ...session(USERS.developer), 'content-type': type }, Buffer.from(body + '--b0--\r\n'))
    assert.equal(res.status, 400, `${body.length} bytes: ${res.text.slice(0, 300)}`)
    assert.equal(res.json().code, 'GRAPHQL_AMBIGUOUS_REQUEST')
  }
  assert.equal(forwarded(g, before), 0)
})

test('shadowed package rules log the refusal and forward the delete', async t => {
  const g = await adminGate(t, { GATE_SHADOW_RESOURCES: 'packages' })
  g.gitlab.packages.push(...PACKAGES)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { npm: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const res = await graphql(g, { 'private-token': USERS.developer }, BY_ID[0]![1])
  assert.equal(res.status, 200, res.text)
  assert.ok(g.logs.some(l => l.decision === 'would_deny' && l.reason === 'PACKAGE_MAINTAINER_ONLY'), 'logged')
})
