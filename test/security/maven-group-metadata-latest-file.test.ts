// Regression: a Maven group route's maven-metadata.xml was decided on the project of the newest
// package of that path, where GitLab serves the one with the latest file.
//
// GitLab's fetch_package (lib/api/helpers/packages/maven.rb) orders by package file for
// maven-metadata.xml outside a -SNAPSHOT path (`order_by_package_file`: packages_package_files
// created_at) and takes the last. A versionless package is created at its first publish and gets a
// new maven-metadata.xml on every later one. A job that published the path once into a project it
// may use (its own) had the newest package; the gate decided on that project and forwarded, and
// GitLab answered with the metadata of another project that published since, whatever that
// project's allowlist says.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, pkg, projectsGate } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })

test('Maven group maven-metadata.xml with versionless packages of the path in several projects: refused, not decided on the newest package\'s project', async t => {
  const g = await projectsGate(t)
  // acme/lib (200) published com/acme/lib first and keeps publishing; the app job (100, in
  // acme/platform) published it once later, so its versionless package is the newest.
  g.gitlab.packages.push(pkg('com/acme/lib', null, 'maven', 200, '2026-01-01T00:00:00Z'), pkg('com/acme/lib', null, 'maven', 100, '2026-02-01T00:00:00Z'))
  for (const path of [
    '/api/v4/groups/acme/-/packages/maven/com/acme/lib/maven-metadata.xml',
    '/api/v4/groups/10/-/packages/maven/com/acme/lib/maven-metadata.xml.sha1'
  ]) {
    const res = await send(g.url, 'GET', path, job(TOKENS.app))
    assert.equal(res.status, 403, path)
    assert.equal(res.json().code, 'PACKAGE_PROJECT_UNCERTAIN', path)
    assert.equal(forwarded(g, path), 0, path)
  }
  // Other files of a versioned path: the newest package's project (GitLab's `last`, by id). (Both
  // versions published before the first read: the paths of one name share its listing, kept 10 s.)
  g.gitlab.packages.push(pkg('com/acme/lib', '1.0', 'maven', 200, '2026-01-01T00:00:00Z'), pkg('com/acme/lib', '1.0', 'maven', 100, '2026-02-01T00:00:00Z'))
  g.gitlab.packages.push(pkg('com/acme/lib', '2.0-SNAPSHOT', 'maven', 200, '2026-01-01T00:00:00Z'), pkg('com/acme/lib', '2.0-SNAPSHOT', 'maven', 100, '2026-02-01T00:00:00Z'))
  const jar = '/api/v4/groups/acme/-/packages/maven/com/acme/lib/1.0/lib-1.0.jar'
  assert.equal((await send(g.url, 'GET', jar, job(TOKENS.app))).status, 200)
  assert.equal((await decisionOf(g, jar)).accessed_project_id, 100)
  // A -SNAPSHOT path's metadata is not ordered by file.
  const snapshot = '/api/v4/groups/acme/-/packages/maven/com/acme/lib/2.0-SNAPSHOT/maven-metadata.xml'
  assert.equal((await send(g.url, 'GET', snapshot, job(TOKENS.app))).status, 200)
  assert.equal((await decisionOf(g, snapshot)).accessed_project_id, 100)
})

test('Maven group maven-metadata.xml of one project: decided on it', async t => {
  const g = await projectsGate(t)
  g.gitlab.packages.push(pkg('com/acme/one', null, 'maven', 200, '2026-01-01T00:00:00Z'), pkg('com/acme/one', '1.0', 'maven', 100, '2026-02-01T00:00:00Z'))
  const path = '/api/v4/groups/acme/-/packages/maven/com/acme/one/maven-metadata.xml'
  assert.equal((await send(g.url, 'GET', path, job(TOKENS.tools))).json().code, 'NOT_ALLOWLISTED')
  assert.equal((await decisionOf(g, path)).accessed_project_id, 200)
})
