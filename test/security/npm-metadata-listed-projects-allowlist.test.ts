// npm's metadata at the instance and group levels lists, with npm_allow_packages_in_multiple_projects,
// the versions of every package of that name under the namespace that the job's user can read
// (Packages::Npm::PackagesForUserFinder: the projects public or visible to that user as a Reporter,
// whatever job token allowlist), and the gate decided the request on the project of the newest
// package only. A job outside the allowlist of a public project that held the newest package was
// let through by that project's package registry (a feature's read, what ProjectPolicy gives such a
// job), and the document listed too the versions of a private project whose allowlist does not
// name the job: a read only the job user's role gives. Every listed project must let the job in.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, pkg, projectsGate } from '../projects/world.ts'

const METADATA = ['/api/v4/packages/npm/@other%2fkit', '/api/v4/groups/other/-/packages/npm/@other%2fkit', '/api/v4/groups/20/-/packages/npm/@other%2fkit']
const job = { 'job-token': TOKENS.app }

test('npm metadata listing a private project outside the job\'s allowlist is refused, the newest package\'s project public', async t => {
  const g = await projectsGate(t)
  // other/tools (300): public, its allowlist without acme/platform/app (100). other/secret (310):
  // private, its allowlist empty; the job's user may read it, so GitLab lists its versions.
  g.gitlab.projects.get(300)!.visibility = 'public'
  g.gitlab.projects.set(310, { id: 310, pathWithNamespace: 'other/secret', namespace: { id: 20, kind: 'group', fullPath: 'other', parentId: null } })
  await g.store.put({ projectId: 310, projectPath: 'other/secret', inboundEnabled: true, entries: [] })
  g.gitlab.packages.push(pkg('@other/kit', '1.0.0', 'npm', 310, '2026-01-01T00:00:00Z'), pkg('@other/kit', '2.0.0', 'npm', 300, '2026-03-01T00:00:00Z'))
  for (const path of METADATA) {
    const res = await send(g.url, 'GET', path, job)
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'PACKAGE_LISTED_PROJECT_NOT_ALLOWED', path)
    assert.doesNotMatch(res.text, /secret/, 'the other project is not named')
    assert.equal(forwarded(g, path), 0, path)
  }
  // The dist-tags of the name are the newest package's project's own: still its public read.
  const tags = '/api/v4/packages/npm/-/package/@other%2fkit/dist-tags'
  assert.equal((await send(g.url, 'GET', tags, job)).status, 200)
  assert.equal((await decisionOf(g, tags)).reason, 'PUBLIC_PROJECT_FEATURES')

  // other/secret public as well: its versions are what its package registry gives such a job.
  const fresh = await projectsGate(t)
  fresh.gitlab.projects.get(300)!.visibility = 'public'
  fresh.gitlab.projects.set(310, { id: 310, pathWithNamespace: 'other/secret', namespace: { id: 20, kind: 'group', fullPath: 'other', parentId: null }, visibility: 'public' })
  await fresh.store.put({ projectId: 310, projectPath: 'other/secret', inboundEnabled: true, entries: [] })
  fresh.gitlab.packages.push(pkg('@other/kit', '1.0.0', 'npm', 310, '2026-01-01T00:00:00Z'), pkg('@other/kit', '2.0.0', 'npm', 300, '2026-03-01T00:00:00Z'))
  for (const path of METADATA) {
    const res = await send(fresh.url, 'GET', path, job)
    assert.equal(res.status, 200, `${path}: ${res.text}`)
    assert.equal((await decisionOf(fresh, path)).reason, 'PUBLIC_PROJECT_FEATURES', path)
  }
})

test('npm metadata listing a private project outside the job\'s allowlist is refused, the newest package the job\'s own', async t => {
  const g = await projectsGate(t)
  // The app job publishes the name into its own project (100), newer than other/secret's.
  g.gitlab.projects.set(310, { id: 310, pathWithNamespace: 'acme/secret', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } })
  await g.store.put({ projectId: 310, projectPath: 'acme/secret', inboundEnabled: true, entries: [] })
  g.gitlab.packages.push(pkg('@acme/kit', '1.0.0', 'npm', 310, '2026-01-01T00:00:00Z'), pkg('@acme/kit', '9.9.9', 'npm', 100, '2026-03-01T00:00:00Z'))
  for (const path of ['/api/v4/packages/npm/@acme%2fkit', '/api/v4/groups/acme/-/packages/npm/@acme%2fkit']) {
    const res = await send(g.url, 'GET', path, job)
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'PACKAGE_LISTED_PROJECT_NOT_ALLOWED', path)
    assert.equal(forwarded(g, path), 0, path)
  }
})
