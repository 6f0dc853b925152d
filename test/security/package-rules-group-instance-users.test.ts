// Finding: the per package format rules bind users (a request without a job token must come from
// a Maintainer where a project set `write` or `delete` for a format), but the user roles stage
// looked only at /projects/:id routes. The same write through a group or instance route, which
// GitLab takes to the same project (a Conan upload or delete through /packages/conan/v1/...
// whose username names the project, an npm dist-tag write through /packages/npm/... or
// /groups/:id/-/packages/npm/...), went to GitLab unchecked: a Developer published or deleted
// where the project keeps that to Maintainers, and GitLab, which has no such rule, let them.
//
// Now those routes find their project as they do for job tokens (src/projects/finder.ts) and
// that project's rules bind the user.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, type TestGate } from '../helpers/gate.ts'

const DEV = 'glpat-developer-of-acme-lib'
const MAINTAINER = 'glpat-maintainer-of-acme-lib'

async function world (t: TestContext): Promise<TestGate> {
  const g = await startTestGate(t, {}, {
    users: {
      [DEV]: { id: 90, username: 'dev', access: { 200: 30 } },
      [MAINTAINER]: { id: 91, username: 'lead', access: { 200: 40 } }
    }
  })
  // acme/lib (200) keeps Conan and npm writes to Maintainers.
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, packageRules: { conan: { write: 'maintainer' }, npm: { write: 'maintainer' } } })
  // An npm package of acme/lib, which GitLab's npm helper finds for @acme/pkg.
  g.gitlab.packages.push({ id: 1, name: '@acme/pkg', version: '1.0.0', packageType: 'npm', projectId: 200, createdAt: '2026-01-01T00:00:00Z' })
  return g
}

const CONAN_INSTANCE = '/api/v4/packages/conan/v1/files/pkg/1.0/acme+lib/stable/0/export/conanfile.py'
const CONAN_PROJECT = '/api/v4/projects/200/packages/conan/v1/files/pkg/1.0/acme+lib/stable/0/export/conanfile.py'
const WRITES: ReadonlyArray<readonly [string, string]> = [
  ['PUT', CONAN_PROJECT],
  ['PUT', CONAN_INSTANCE],
  ['PUT', `${CONAN_INSTANCE}/authorize`],
  ['DELETE', '/api/v4/packages/conan/v1/conans/pkg/1.0/acme+lib/stable'],
  ['PUT', '/api/v4/packages/npm/-/package/@acme%2Fpkg/dist-tags/latest'],
  ['DELETE', '/api/v4/packages/npm/-/package/@acme%2Fpkg/dist-tags/latest'],
  ['PUT', '/api/v4/groups/10/-/packages/npm/-/package/@acme%2Fpkg/dist-tags/latest'],
  ['DELETE', '/api/v4/groups/acme/-/packages/npm/-/package/@acme%2Fpkg/dist-tags/latest']
]

test('a Developer may not write through group or instance routes what the project keeps to Maintainers', async (t) => {
  const g = await world(t)
  for (const [method, path] of WRITES) {
    const res = await fetch(g.url + path, { method, headers: { 'private-token': DEV, 'content-type': 'application/json' }, body: method === 'PUT' ? '"1.0.0"' : null })
    const body = await res.json() as { code?: string }
    assert.equal(res.status, 403, `${method} ${path}: ${JSON.stringify(body)}`)
    assert.equal(body.code, 'PACKAGE_MAINTAINER_ONLY', `${method} ${path}`)
  }
  assert.deepEqual(g.seen.map(s => `${s.method} ${s.url}`), [], 'nothing reached GitLab')
})

test('a Maintainer still writes through them, and a format without a rule stays GitLab\'s', async (t) => {
  const g = await world(t)
  for (const [method, path] of WRITES) {
    const res = await fetch(g.url + path, { method, headers: { 'private-token': MAINTAINER, 'content-type': 'application/json' }, body: method === 'PUT' ? '"1.0.0"' : null })
    await res.arrayBuffer()
    assert.equal(res.status, 200, `${method} ${path}`)
  }
  assert.equal(g.seen.length, WRITES.length)
  // Another project's Conan upload through the instance API: other/tools sets no rule.
  const res = await fetch(g.url + '/api/v4/packages/conan/v1/files/pkg/1.0/other+tools/stable/0/export/conanfile.py', { method: 'PUT', headers: { 'private-token': DEV }, body: 'x' })
  await res.arrayBuffer()
  assert.equal(res.status, 200)
})
