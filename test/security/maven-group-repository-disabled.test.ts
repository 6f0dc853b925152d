// Regression: Maven group downloads of a package whose project has its repository disabled were
// forwarded undecided, or decided on another project.
//
// GitLab's group Maven route picks the package with Packages::Maven::PackageFinder over every
// project under the group (app/finders/packages/maven/package_finder.rb, `packages_for` or
// `packages_visible_to_user_including_public_registries`: no repository filter), then checks the
// job against that package's project. The gate read only `GET /groups/:id/packages`
// (Packages::GroupPackagesFinder), which keeps projects `with_feature_available_for_user(
// :repository)`: for an administrator, those whose repository is not disabled. A package-only
// project's package was not seen: the download was forwarded with NO_PROJECT, or decided on an
// older package of the same path in a project the job may use.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, packageOnlyWorld, pkg } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })

test('Maven group downloads of a package in a project with the repository disabled are decided on that project, not forwarded', async t => {
  const g = await packageOnlyWorld(t)
  g.gitlab.packages.push(pkg('com/acme/secret', '1.0', 'maven', 810, '2026-01-01T00:00:00Z'), pkg('com/acme/secret', null, 'maven', 810, '2026-01-01T00:00:01Z'))
  for (const path of [
    '/api/v4/groups/acme/-/packages/maven/com/acme/secret/1.0/secret-1.0.jar',
    '/api/v4/groups/10/-/packages/maven/com/acme/secret/1.0/secret-1.0.pom.sha1',
    '/api/v4/groups/acme/-/packages/maven/com/acme/secret/maven-metadata.xml'
  ]) {
    const res = await send(g.url, 'GET', path, job(TOKENS.tools))
    const log = await decisionOf(g, path)
    assert.equal(forwarded(g, path), 0, `${path} was forwarded: ${String(log.decision)} ${String(log.reason)}`)
    assert.equal(res.json().code, 'NOT_ALLOWLISTED', path)
    assert.equal(log.accessed_project_id, 810, path)
  }
})

test('Maven group: an older package of the path where the job may read, the newest in a package-only project: decided on the newest\'s project', async t => {
  const g = await packageOnlyWorld(t)
  // acme/registry (700) lets the `other` group's jobs in; GitLab serves 810's newer package.
  g.gitlab.packages.push(pkg('com/acme/shared', '1.0', 'maven', 700, '2026-01-01T00:00:00Z'), pkg('com/acme/shared', '1.0', 'maven', 810, '2026-02-01T00:00:00Z'))
  const path = '/api/v4/groups/acme/-/packages/maven/com/acme/shared/1.0/shared-1.0.jar'
  const res = await send(g.url, 'GET', path, job(TOKENS.tools))
  assert.equal(res.json().code, 'NOT_ALLOWLISTED')
  assert.equal(forwarded(g, path), 0)
  assert.equal((await decisionOf(g, path)).accessed_project_id, 810)
  // Where the package-only project's is the older one, the newest (700's) decides.
  const other = '/api/v4/groups/acme/-/packages/maven/com/acme/older/1.0/older-1.0.jar'
  g.gitlab.packages.push(pkg('com/acme/older', '1.0', 'maven', 810, '2026-01-01T00:00:00Z'), pkg('com/acme/older', '1.0', 'maven', 700, '2026-02-01T00:00:00Z'))
  assert.equal((await send(g.url, 'GET', other, job(TOKENS.tools))).status, 200)
  assert.equal((await decisionOf(g, other)).accessed_project_id, 700)
})

test('Maven group: the group\'s package-only projects are listed once for every path under it, not once per path', async t => {
  const g = await packageOnlyWorld(t)
  const names = ['alpha', 'beta', 'gamma', 'delta']
  for (const name of names) g.gitlab.packages.push(pkg(`com/acme/${name}`, '1.0', 'maven', 810, '2026-01-01T00:00:00Z'))
  for (const name of names) {
    const path = `/api/v4/groups/acme/-/packages/maven/com/acme/${name}/1.0/${name}-1.0.jar`
    assert.equal((await send(g.url, 'GET', path, job(TOKENS.tools))).json().code, 'NOT_ALLOWLISTED', path)
    assert.equal((await decisionOf(g, path)).accessed_project_id, 810, path)
  }
  assert.equal(g.gitlab.calls.group_projects, 1, 'one listing of acme\'s projects for the four paths')
  assert.equal(g.gitlab.calls.packages, names.length + 1, 'each path: the group\'s packages; the package-only project\'s, whole, once')
})
