// Regression: with a service token that cannot read every project, npm's metadata at the instance
// and group levels was decided on the projects that token was shown.
//
// GitLab's metadata of a name (`GET /packages/npm/:name`, `GET /groups/:id/-/packages/npm/:name`)
// lists the versions of every package of that name under the namespace that the caller can read
// (Packages::Npm::PackagesForUserFinder). The gate asks it as the service token and holds every
// project its tarballs name to its package rules; a narrower token is shown the versions of the
// projects it may read only. A project it could not read, keeping npm reads from job tokens
// (acme/lib), was missing from what the gate checked: the job's read was decided on its own
// project alone (self access) and forwarded, and GitLab listed acme/lib's versions, dependencies
// and tarball checksums to the job, whose user reads acme/lib. Such a token's metadata is no more
// certain than its Maven package lists: refused, 403 PROJECT_LOOKUP_UNVERIFIED.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, pkg, projectsGate } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const METADATA = ['/api/v4/packages/npm/@acme%2fsecret', '/api/v4/groups/acme/-/packages/npm/@acme%2fsecret', '/api/v4/groups/10/-/packages/npm/@acme%2fsecret']

test('npm metadata is refused when the service token may not see every project it lists', async t => {
  const g = await projectsGate(t)
  // acme/lib (200) keeps npm reads from job tokens; the app job (project 100) publishes the same name.
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, packageRules: { npm: { read: false, write: 'maintainer' } } })
  g.gitlab.packages.push(pkg('@acme/secret', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'), pkg('@acme/secret', '9.9.9', 'npm', 100, '2026-03-01T00:00:00Z'))
  // The token cannot read acme/lib: the metadata it is shown names the app's project alone.
  g.gitlab.serviceRole = 'user'
  g.gitlab.serviceHidden.add(200)
  for (const path of METADATA) {
    const res = await send(g.url, 'GET', path, job(TOKENS.app))
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'PROJECT_LOOKUP_UNVERIFIED', path)
    assert.equal(forwarded(g, path), 0, path)
    assert.deepEqual([(await decisionOf(g, path)).reason, (await decisionOf(g, path)).stage], ['PROJECT_LOOKUP_UNVERIFIED', 'resolve_grants'], path)
  }
})

test('an administrator or auditor token holds every project the npm metadata lists to its rules', async t => {
  for (const role of ['admin', 'auditor'] as const) {
    const g = await projectsGate(t)
    g.gitlab.serviceRole = role
    const { version: _version, ...doc } = (await g.store.get(200))!
    await g.store.put({ ...doc, packageRules: { npm: { read: false, write: 'maintainer' } } })
    g.gitlab.packages.push(pkg('@acme/secret', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'), pkg('@acme/secret', '9.9.9', 'npm', 100, '2026-03-01T00:00:00Z'))
    for (const path of METADATA) assert.equal((await send(g.url, 'GET', path, job(TOKENS.app))).json().code, 'PACKAGE_READ_DISABLED', `${role} ${path}`)
    // A name in the app's project alone is its own.
    g.gitlab.packages.push(pkg('@acme/own', '1.0.0', 'npm', 100, '2026-01-01T00:00:00Z'))
    const own = '/api/v4/packages/npm/@acme%2fown'
    assert.equal((await send(g.url, 'GET', own, job(TOKENS.app))).status, 200, role)
    assert.equal((await decisionOf(g, own)).reason, 'SELF_ACCESS', role)
  }
})
