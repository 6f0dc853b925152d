// Regression: npm instance and group routes to a package whose project has its repository
// disabled were forwarded undecided.
//
// GitLab's npm helper finds the project with Packages::Npm::PackageFinder over
// `namespace.all_projects`, with no feature filter (app/finders/packages/npm/package_finder.rb);
// a package-only project (repository disabled, package registry enabled) is valid. The gate asked
// `GET /groups/:id/packages`, served by Packages::GroupPackagesFinder, which keeps only projects
// `with_feature_available_for_user(:repository, user)`: for an administrator, those whose
// repository is enabled. The gate found no package and forwarded (NO_PROJECT), or found an older
// one in another project and decided on the wrong project. The fake GitLab's package list leaves
// such projects out as GitLab does.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, packageOnlyWorld, pkg } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })

test('npm routes to a package of a project with the repository disabled are decided on that project, not forwarded', async t => {
  const g = await packageOnlyWorld(t)
  g.gitlab.packages.push(pkg('@acme/only-pkg', '1.0.0', 'npm', 810, '2026-01-01T00:00:00Z'))
  // The project route to the same package: the gate's rule for 810.
  const viaProject = await send(g.url, 'PUT', '/api/v4/projects/810/packages/npm/-/package/@acme%2fonly-pkg/dist-tags/latest', job(TOKENS.tools), '"1.0.0"')
  assert.equal(viaProject.json().code, 'NOT_ALLOWLISTED')
  for (const [method, path, body] of [
    ['PUT', '/api/v4/packages/npm/-/package/@acme%2fonly-pkg/dist-tags/latest', '"1.0.0"'],
    ['DELETE', '/api/v4/groups/acme/-/packages/npm/-/package/@acme%2fonly-pkg/dist-tags/latest', undefined],
    ['DELETE', '/api/v4/groups/10/-/packages/npm/-/package/@acme%2fonly-pkg/dist-tags/beta', undefined],
    ['GET', '/api/v4/packages/npm/@acme%2fonly-pkg', undefined],
    ['GET', '/api/v4/groups/acme/-/packages/npm/@acme%2fonly-pkg', undefined]
  ] as const) {
    const res = await send(g.url, method, path, job(TOKENS.tools), body)
    const log = await decisionOf(g, path)
    assert.equal(forwarded(g, path), 0, `${method} ${path} was forwarded: ${String(log.decision)} ${String(log.reason)}`)
    assert.equal(res.json().code, 'NOT_ALLOWLISTED', `${method} ${path}`)
    assert.equal(log.accessed_project_id, 810, `${method} ${path}`)
  }
})

test('npm: the newest package in a project with the repository disabled, an older one elsewhere: refused, not decided on the older one\'s project', async t => {
  const g = await packageOnlyWorld(t)
  // acme/registry (700) lets the other group's jobs publish; GitLab acts on 810, whose package is
  // newer. The group list shows only 700's: deciding on 700 would allow a change to 810.
  g.gitlab.packages.push(pkg('@acme/shared', '1.0.0', 'npm', 700, '2026-01-01T00:00:00Z'), pkg('@acme/shared', '2.0.0', 'npm', 810, '2026-02-01T00:00:00Z'))
  const path = '/api/v4/packages/npm/-/package/@acme%2fshared/dist-tags/latest'
  const res = await send(g.url, 'PUT', path, job(TOKENS.tools), '"2.0.0"')
  assert.equal(res.status, 403)
  assert.equal(res.json().code, 'PACKAGE_PROJECT_UNCERTAIN')
  assert.match(res.json().message, /cannot tell for sure which project/)
  assert.equal(forwarded(g, path), 0)
  assert.deepEqual([(await decisionOf(g, path)).decision, (await decisionOf(g, path)).reason], ['deny', 'PACKAGE_PROJECT_UNCERTAIN'])
  // With both projects' repositories enabled the list shows both, and the newest (810's) is
  // decided on (asked through the group route: the instance route's refusal is cached briefly).
  g.gitlab.projects.set(810, { ...g.gitlab.projects.get(810)!, accessLevels: {} })
  const later = '/api/v4/groups/acme/-/packages/npm/-/package/@acme%2fshared/dist-tags/next'
  const decided = await send(g.url, 'PUT', later, job(TOKENS.tools), '"2.0.0"')
  assert.equal(decided.json().code, 'NOT_ALLOWLISTED')
  assert.equal((await decisionOf(g, later)).accessed_project_id, 810)
})

test('npm: a package whose project has its package registry disabled (GitLab refuses even the administrator) is refused, not forwarded', async t => {
  const g = await packageOnlyWorld(t)
  g.gitlab.projects.set(811, { id: 811, pathWithNamespace: 'acme/closed', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null }, accessLevels: { package_registry: 'disabled' } })
  g.gitlab.packages.push(pkg('@acme/closed', '1.0.0', 'npm', 811, '2026-01-01T00:00:00Z'))
  const path = '/api/v4/packages/npm/-/package/@acme%2fclosed/dist-tags/latest'
  const res = await send(g.url, 'DELETE', path, job(TOKENS.tools))
  assert.equal(res.json().code, 'PACKAGE_PROJECT_UNCERTAIN')
  assert.equal(forwarded(g, path), 0)
})
