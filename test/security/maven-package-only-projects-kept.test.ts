// Regression: a Maven group download naming a package not seen before cost 1 + H GitLab calls
// (H: the group's package-only projects, up to 20): the group's package list of the name, and the
// same list asked of each project whose repository is disabled, which the group's list leaves out.
// What the lists answered was kept per name (10 s), so a job naming made-up packages, one after
// another, still had the gate send GitLab 21 calls per name.
//
// Now a package-only project's Maven packages are read whole where they fit one page (100), kept
// 10 s as a name's listing is, and every name under the group is answered from them: a made-up
// name costs the group's list alone. A project of more packages is asked per name, as before. An
// answer decided from a whole list is kept no longer than its TTL from when that list was read, so
// a package published meanwhile is seen as soon as it was before.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import type { GitlabClient } from '../../src/gitlab/client.ts'
import type { JobIdentity } from '../../src/identity/types.ts'
import { createProjectFinder, type Found } from '../../src/projects/finder.ts'
import { Router } from '../../src/routing/router.ts'
import { TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, FINDER_JOB, mavenListAnswer, type ListedPackage, packageOnlyWorld, pkg } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const GROUP = '/api/v4/groups/acme/-/packages/maven'

/** The package lists asked of GitLab: the group's, a package-only project's for one name, and its whole. */
function lists (g: TestGate): { group: number, projectByName: number, projectWhole: number } {
  const counts = { group: 0, projectByName: 0, projectWhole: 0 }
  for (const target of g.gitlab.targets) {
    const url = new URL(target, 'http://gitlab')
    if (/^\/api\/v4\/groups\/[^/]+\/packages$/.test(url.pathname)) counts.group++
    else if (/^\/api\/v4\/projects\/\d+\/packages$/.test(url.pathname)) counts[url.searchParams.has('package_name') ? 'projectByName' : 'projectWhole']++
  }
  return counts
}

/** acme with 20 package-only projects (810-829); 811 holds `big` more packages than a page. */
async function world (t: Parameters<typeof packageOnlyWorld>[0], big: number): Promise<TestGate> {
  const g = await packageOnlyWorld(t)
  for (let id = 811; id < 830; id++) g.gitlab.projects.set(id, { id, pathWithNamespace: `acme/packages-${id}`, namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null }, accessLevels: { repository: 'disabled' } })
  for (let i = 0; i < big; i++) g.gitlab.packages.push(pkg(`com/acme/big-${i}`, '1.0', 'maven', 811, '2026-01-01T00:00:00Z'))
  g.gitlab.packages.push(pkg('com/acme/real', '1.0', 'maven', 812, '2026-01-01T00:00:00Z'))
  assert.equal((await send(g.url, 'GET', '/api/v4/job', job(TOKENS.tools))).status, 200)
  g.gitlab.resetCalls()
  return g
}

test('made-up names cost the group\'s package list each, the package-only projects\' lists once', async t => {
  const g = await world(t, 0)
  for (let i = 0; i < 30; i++) {
    const path = `${GROUP}/com/acme/made-up-${i}/1.0/x.jar`
    assert.equal((await send(g.url, 'GET', path, job(TOKENS.tools))).status, 200)
    assert.equal((await decisionOf(g, path)).reason, 'NO_PROJECT')
  }
  // Each name asked of every package-only project, as before: 30 × 21 = 630.
  assert.deepEqual(lists(g), { group: 30, projectByName: 0, projectWhole: 20 })
  // A package in a package-only project is found from its whole list.
  const real = `${GROUP}/com/acme/real/1.0/real-1.0.jar`
  assert.equal((await send(g.url, 'GET', real, job(TOKENS.tools))).json().code, 'UNKNOWN_PROJECT')
  assert.equal((await decisionOf(g, real)).accessed_project_id, 812)
  assert.deepEqual(lists(g), { group: 31, projectByName: 0, projectWhole: 20 })
  assert.equal(g.gitlab.calls.group_projects, 1)
})

test('a package-only project of more packages than a page is asked per name, as before', async t => {
  const g = await world(t, 150)
  for (let i = 0; i < 10; i++) await send(g.url, 'GET', `${GROUP}/com/acme/made-up-${i}/1.0/x.jar`, job(TOKENS.tools))
  assert.deepEqual(lists(g), { group: 10, projectByName: 10, projectWhole: 20 })
  // Its packages are found by their names' own lists.
  const path = `${GROUP}/com/acme/big-149/1.0/big-149-1.0.jar`
  assert.equal((await send(g.url, 'GET', path, job(TOKENS.tools))).json().code, 'UNKNOWN_PROJECT')
  assert.equal((await decisionOf(g, path)).accessed_project_id, 811)
})

// The finder itself, with a GitLab stand-in and a clock moved by hand.
const router = Router.compile(loadCatalog().routes)
const identity: JobIdentity = FINDER_JOB
type Listed = ListedPackage

/** acme, whose one package-only project (810) holds `packages`; the group's own list is empty. */
function standIn (packages: Listed[]): { gitlab: GitlabClient, asked: string[] } {
  const asked: string[] = []
  const gitlab: GitlabClient = {
    async get (path) {
      if (path === '/api/v4/user' || path === '/api/v4/users/1') return { status: 200, body: { id: 1, is_admin: true } }
      return { status: 404, body: undefined }
    },
    async getList (path) {
      if (path.includes('/projects?')) return { status: 200, items: [{ id: 810, repository_access_level: 'disabled', package_registry_access_level: 'enabled' }], truncated: false }
      asked.push(path)
      if (!path.startsWith('/api/v4/projects/810/')) return { status: 200, items: [], truncated: false }
      return mavenListAnswer(packages, path)
    },
    hasServiceToken: true,
    stats: () => ({}),
    async close () {}
  }
  return { gitlab, asked }
}

async function find (finder: ReturnType<typeof createProjectFinder>, path: string): Promise<Found> {
  const match = router.match('GET', `/groups/acme/-/packages/maven/${path}`)
  assert.ok(match)
  return await finder.find(match.route, match.params, identity)
}

test('a package published into a package-only project is seen within 10 s of its whole list being read, as a name\'s own listing was', async () => {
  let ms = 1
  const packages: Listed[] = [{ name: 'com/acme/app', version: '1.0', project: 810, at: '2026-01-01T00:00:00Z' }]
  const { gitlab, asked } = standIn(packages)
  const finder = createProjectFinder({ gitlab, clock: { now: () => ms } })
  assert.deepEqual(await find(finder, 'com/acme/app/1.0/app-1.0.jar'), { kind: 'project', id: 810 })
  assert.equal(asked.filter(path => path.startsWith('/api/v4/projects/810/')).length, 1)
  // Published at 5 s; a name first asked at 6 s is answered from the whole list read at 1 ms.
  ms = 5_000
  packages.push({ name: 'com/acme/new', version: '1.0', project: 810, at: '2026-02-01T00:00:00Z' })
  ms = 6_000
  assert.deepEqual(await find(finder, 'com/acme/new/1.0/new-1.0.jar'), { kind: 'no_project' })
  ms = 10_000
  assert.deepEqual(await find(finder, 'com/acme/new/1.0/new-1.0.pom'), { kind: 'no_project' }, 'decided on answers 9.999 s old')
  ms = 10_002
  assert.deepEqual(await find(finder, 'com/acme/new/1.0/new-1.0.pom'), { kind: 'project', id: 810 }, 'the whole list, and what came of it, are gone at 10 s')
  assert.equal(asked.filter(path => path.startsWith('/api/v4/projects/810/')).length, 2)
  // The first answer, decided on the list read at 1 ms, goes at 60 s from then.
  packages.push({ name: 'com/acme/app', version: '1.0', project: 810, at: '2026-03-01T00:00:00Z' })
  ms = 60_000
  assert.deepEqual(await find(finder, 'com/acme/app/1.0/app-1.0.jar'), { kind: 'project', id: 810 })
  assert.equal(asked.filter(path => path.startsWith('/api/v4/projects/810/')).length, 2, 'kept: decided on an answer 59.999 s old')
  ms = 60_002
  assert.deepEqual(await find(finder, 'com/acme/app/1.0/app-1.0.jar'), { kind: 'project', id: 810 })
  assert.equal(asked.filter(path => path.startsWith('/api/v4/projects/810/')).length, 3, 'asked again once 60 s old')
  // Only the project's whole list was asked, never a name of it.
  assert.ok(asked.filter(path => path.startsWith('/api/v4/projects/810/')).every(path => !path.includes('package_name=')))
})
