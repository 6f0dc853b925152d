// npm's metadata at the instance and group levels (`GET /packages/npm/:name`,
// `GET /groups/:id/-/packages/npm/:name`) lists, with npm_allow_packages_in_multiple_projects, the
// versions of every package of that name the job's user can read under the namespace
// (Packages::Npm::PackagesForUserFinder, lib/api/concerns/packages/npm_namespace_endpoints.rb),
// while the gate decides the request on the project of the newest one. Only that project's package
// rules were checked: a job that published a newer package of the same name into its own project
// read, as self access, the metadata (versions, dependencies, tarball URLs and checksums) of a
// project that keeps npm reads from job tokens. Every listed project's rules are checked now.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, pkg, projectsGate } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const METADATA = ['/api/v4/packages/npm/@acme%2fsecret', '/api/v4/groups/acme/-/packages/npm/@acme%2fsecret', '/api/v4/groups/10/-/packages/npm/@acme%2fsecret']

test('npm metadata listing several projects holds every one of them to its package rules', async t => {
  const g = await projectsGate(t)
  // acme/lib (200) keeps npm reads from job tokens; the app job (project 100) publishes the same
  // name into its own project, newer.
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, packageRules: { npm: { read: false, write: 'maintainer' } } })
  g.gitlab.packages.push(pkg('@acme/secret', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'), pkg('@acme/secret', '9.9.9', 'npm', 100, '2026-03-01T00:00:00Z'))
  for (const path of METADATA) {
    const res = await send(g.url, 'GET', path, job(TOKENS.app))
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'PACKAGE_READ_DISABLED', path)
    assert.equal(forwarded(g, path), 0, path)
  }
  // The dist-tags of the name are the decided project's own: still self access.
  const tags = '/api/v4/packages/npm/-/package/@acme%2fsecret/dist-tags'
  assert.equal((await send(g.url, 'GET', tags, job(TOKENS.app))).status, 200)
  assert.equal((await decisionOf(g, tags)).reason, 'SELF_ACCESS')

  // Without the rule, the metadata is decided on the newest package's project as before.
  const { version: _v, ...again } = (await g.store.get(200))!
  await g.store.put({ ...again, packageRules: {} })
  for (const path of METADATA) {
    const res = await send(g.url, 'GET', path, job(TOKENS.app))
    assert.equal(res.status, 200, `${path}: ${res.text}`)
    assert.equal((await decisionOf(g, path)).reason, 'SELF_ACCESS', path)
  }
})
