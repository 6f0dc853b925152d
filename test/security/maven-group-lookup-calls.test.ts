// Regression: each Maven group download with a path not seen before cost 1 + H GitLab calls (H:
// the group's package-only projects, up to 20), however many paths named the same package, and
// any number of those lookups ran at once.
//
// The project of `GET /groups/:id/-/packages/maven/*path/:file_name` is found from the packages
// of the path's name: `GET /groups/:id/packages?package_name=<name>` and the same list of each
// project under the group whose repository is disabled (which the group's list leaves out). The
// answer was kept per path (`name/version`), so every version of a package, and the name's
// maven-metadata.xml, asked GitLab the same lists again: a cold build of 20 artifacts (two
// versions each, their metadata) cost 1,261 calls for 160 downloads, and a job (any job) naming
// made-up versions or names had the gate send GitLab 21 calls per request, as many at once as it
// sent requests.
//
// Now what the lists answered is kept per group and name, 10 s (what is decided from it is kept
// that much less long, so no answer is older than its TTL), and at most eight such listings are
// read at once gate-wide, 1,024 more lookups wait their turn, and a lookup past them is refused,
// 503 PROJECT_LOOKUPS_BUSY: never decided on another answer.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import type { GitlabClient } from '../../src/gitlab/client.ts'
import type { JobIdentity } from '../../src/identity/types.ts'
import { createProjectFinder, type Found } from '../../src/projects/finder.ts'
import { Router } from '../../src/routing/router.ts'
import { GateError } from '../../src/errors.ts'
import { TOKENS, type TestGate } from '../helpers/gate.ts'
import { eventually } from '../helpers/eventually.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, FINDER_JOB, mavenListAnswer, type ListedPackage, forwarded, packageOnlyWorld, pkg, projectsGate } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const GROUP = '/api/v4/groups/acme/-/packages/maven'
const ARTIFACTS = 20
/** The package lists and project lists the lookups asked of GitLab. */
const calls = (g: TestGate): number => g.gitlab.calls.packages + g.gitlab.calls.group_projects

/** acme with 20 package-only projects (810: packageOnlyWorld's, 811-829), and 20 artifacts in acme/registry (700), which lets other/tools' job read. */
async function buildWorld (t: Parameters<typeof packageOnlyWorld>[0]): Promise<TestGate> {
  const g = await packageOnlyWorld(t)
  for (let id = 811; id < 830; id++) g.gitlab.projects.set(id, { id, pathWithNamespace: `acme/packages-${id}`, namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null }, accessLevels: { repository: 'disabled' } })
  for (let i = 0; i < ARTIFACTS; i++) {
    g.gitlab.packages.push(
      pkg(`com/acme/lib-${i}`, '1.0', 'maven', 700, '2026-01-01T00:00:00Z'),
      pkg(`com/acme/lib-${i}`, '1.1', 'maven', 700, '2026-01-02T00:00:00Z'),
      pkg(`com/acme/lib-${i}`, null, 'maven', 700, '2026-01-02T00:00:01Z'))
  }
  // The job's token resolved once, before the downloads.
  assert.equal((await send(g.url, 'GET', '/api/v4/job', job(TOKENS.tools))).status, 200)
  g.gitlab.resetCalls()
  return g
}

/** What a cold build fetches of artifact i: a version's pom, the metadata (a range), the newer version's pom and jar, each with its checksum. */
function buildFiles (i: number): string[] {
  const a = `com/acme/lib-${i}`
  return [`${a}/1.0/lib-${i}-1.0.pom`, `${a}/1.0/lib-${i}-1.0.pom.sha1`, `${a}/maven-metadata.xml`, `${a}/maven-metadata.xml.sha1`,
    `${a}/1.1/lib-${i}-1.1.pom`, `${a}/1.1/lib-${i}-1.1.pom.sha1`, `${a}/1.1/lib-${i}-1.1.jar`, `${a}/1.1/lib-${i}-1.1.jar.sha1`]
}

test('a cold build\'s downloads of few packages ask GitLab once per package name, not once per path', async t => {
  const g = await buildWorld(t)
  let requests = 0
  for (let i = 0; i < ARTIFACTS; i++) {
    for (const file of buildFiles(i)) {
      const path = `${GROUP}/${file}`
      assert.equal((await send(g.url, 'GET', path, job(TOKENS.tools))).status, 200, path)
      assert.equal((await decisionOf(g, path)).accessed_project_id, 700, path)
      requests++
    }
  }
  // Each artifact's name (com/acme/lib-i: its versions), and com/acme once (every artifact's
  // maven-metadata.xml: `com/acme` version `lib-i`, or the versionless `com/acme/lib-i`), each the
  // group's list; each package-only project's whole list once, and the group's projects once.
  // Per path, as before: 60 lookups of 21 lists, 1,261; per name, each project asked for each: 442.
  assert.equal(requests, 160)
  assert.equal(calls(g), (ARTIFACTS + 1) + 20 + 1)
  assert.equal(g.gitlab.calls.group_projects, 1)
})

test('made-up versions of one package cost its lists once; made-up names are forwarded as no project, each asked once', async t => {
  const g = await buildWorld(t)
  for (let i = 0; i < 200; i++) {
    const path = `${GROUP}/com/acme/lib-0/x${i}/lib-0-x${i}.jar`
    assert.equal((await send(g.url, 'GET', path, job(TOKENS.tools))).status, 200)
    assert.equal((await decisionOf(g, path)).reason, 'NO_PROJECT')
  }
  assert.equal(calls(g), 21 + 1, 'the lists of com/acme/lib-0 once (per path: 4,200)')
  g.gitlab.resetCalls()
  for (let i = 0; i < 20; i++) await send(g.url, 'GET', `${GROUP}/com/acme/made-up-${i}/1.0/x.jar`, job(TOKENS.tools))
  assert.equal(calls(g), 20, 'a name never asked is asked of the group\'s list (the package-only projects\' lists are kept whole): the bound is on how many at once')
})

test('a version published into a package-only project is seen by the paths of its name, and decided on that project', async t => {
  const g = await buildWorld(t)
  // The newest 1.1 of lib-3 lies in acme/packages (810, repository disabled), which lets nobody in.
  g.gitlab.packages.push(pkg('com/acme/lib-3', '1.1', 'maven', 810, '2026-03-01T00:00:00Z'))
  const jar = `${GROUP}/com/acme/lib-3/1.1/lib-3-1.1.jar`
  assert.equal((await send(g.url, 'GET', jar, job(TOKENS.tools))).json().code, 'NOT_ALLOWLISTED')
  assert.equal(forwarded(g, jar), 0)
  assert.equal((await decisionOf(g, jar)).accessed_project_id, 810)
  // Another path of the name, from the listing kept: 1.0 only in acme/registry.
  const old = `${GROUP}/com/acme/lib-3/1.0/lib-3-1.0.jar`
  assert.equal((await send(g.url, 'GET', old, job(TOKENS.tools))).status, 200)
  assert.equal((await decisionOf(g, old)).accessed_project_id, 700)
  assert.equal(calls(g), 21 + 1)
})

test('at most eight Maven listings are read at once gate-wide; the rest wait their turn and are all decided', async t => {
  const g = await projectsGate(t)
  assert.equal((await send(g.url, 'GET', '/api/v4/job', job(TOKENS.tools))).status, 200)
  for (let i = 0; i < 30; i++) g.gitlab.packages.push(pkg(`com/acme/m-${i}`, '1.0', 'maven', 700, '2026-01-01T00:00:00Z'))
  // acme has no package-only project: each listing is one call, held until released.
  assert.equal((await send(g.url, 'GET', `${GROUP}/com/acme/warm/1.0/x.jar`, job(TOKENS.tools))).status, 200)
  g.gitlab.resetCalls()
  g.gitlab.hold.add('packages')
  const answers = Array.from({ length: 30 }, (_, i) => send(g.url, 'GET', `${GROUP}/com/acme/m-${i}/1.0/m-${i}-1.0.jar`, job(TOKENS.tools)))
  for (let read = 8; read < 30; read += 8) {
    await eventually(() => g.gitlab.calls.packages === read, { message: `${read} listings asked` })
    // One more round trip through the gate: the others have had every chance to ask.
    assert.equal((await send(g.url, 'GET', '/api/v4/job', job(TOKENS.tools))).status, 200)
    assert.equal(g.gitlab.calls.packages, read, 'the others wait')
    g.gitlab.release()
  }
  g.gitlab.hold.delete('packages')
  g.gitlab.release()
  for (const answer of await Promise.all(answers)) assert.equal(answer.status, 200)
  assert.equal(g.gitlab.calls.packages, 30)
  assert.equal(g.seen.length, 31)
})

// The finder itself, with a GitLab stand-in and a clock moved by hand.
const router = Router.compile(loadCatalog().routes)
const identity: JobIdentity = FINDER_JOB
type Listed = ListedPackage

function standIn (packages: Listed[], hold?: { readonly waiting: Array<() => void> }): { gitlab: GitlabClient, lists: () => number } {
  let lists = 0
  const gitlab: GitlabClient = {
    async get (path) {
      if (path === '/api/v4/user' || path === '/api/v4/users/1') return { status: 200, body: { id: 1, is_admin: true } }
      return { status: 404, body: undefined }
    },
    async getList (path) {
      if (path.includes('/projects?')) return { status: 200, items: [], truncated: false }
      lists++
      if (hold !== undefined) await new Promise<void>(resolve => hold.waiting.push(resolve))
      return mavenListAnswer(packages, path)
    },
    hasServiceToken: true,
    stats: () => ({}),
    async close () {}
  }
  return { gitlab, lists: () => lists }
}

async function find (finder: ReturnType<typeof createProjectFinder>, path: string, jobId = identity.jobId): Promise<Found> {
  const match = router.match('GET', `/groups/acme/-/packages/maven/${path}`)
  assert.ok(match)
  return await finder.find(match.route, match.params, { ...identity, jobId })
}

test('an answer decided from a kept listing is kept only as long as its TTL from when the listing was read', async () => {
  let ms = 1
  const clock = { now: () => ms }
  const packages: Listed[] = [
    { name: 'com/acme/app', version: '1.0', project: 200, at: '2026-01-01T00:00:00Z' },
    { name: 'com/acme/app', version: '1.5', project: 250, at: '2026-01-02T00:00:00Z' }
  ]
  const { gitlab, lists } = standIn(packages)
  const finder = createProjectFinder({ gitlab, clock })
  assert.deepEqual(await find(finder, 'com/acme/app/1.0/app-1.0.jar'), { kind: 'project', id: 200 })
  assert.equal(lists(), 1)
  // 6 s later, from the listing kept: 1.5 is found (kept 54 s, not 60), 2.0 is not (kept 4 s, not 10).
  ms += 6_000
  assert.deepEqual(await find(finder, 'com/acme/app/1.5/app-1.5.jar'), { kind: 'project', id: 250 })
  assert.deepEqual(await find(finder, 'com/acme/app/2.0/app-2.0.jar'), { kind: 'no_project' })
  assert.equal(lists(), 1)
  packages.push({ name: 'com/acme/app', version: '2.0', project: 300, at: '2026-02-01T00:00:00Z' })
  ms = 10_000
  assert.deepEqual(await find(finder, 'com/acme/app/2.0/app-2.0.pom'), { kind: 'no_project' }, 'kept: the listing is 9.999 s old')
  ms = 10_002
  assert.deepEqual(await find(finder, 'com/acme/app/2.0/app-2.0.pom'), { kind: 'project', id: 300 }, 'the listing and what came of it are gone at 10 s')
  assert.equal(lists(), 2)
  // A newer 1.5 elsewhere: the 1.5 answer, decided on what GitLab said at 1 ms, goes at 60 s.
  packages.push({ name: 'com/acme/app', version: '1.5', project: 400, at: '2026-03-01T00:00:00Z' })
  ms = 60_000
  assert.deepEqual(await find(finder, 'com/acme/app/1.5/app-1.5.pom'), { kind: 'project', id: 250 }, 'kept: decided on an answer 59.999 s old')
  ms = 60_002
  assert.deepEqual(await find(finder, 'com/acme/app/1.5/app-1.5.pom'), { kind: 'project', id: 400 }, 'asked again once 60 s old')
  assert.equal(lists(), 3)
})

test('past eight Maven listings read and 1,024 waiting, a lookup is refused PROJECT_LOOKUPS_BUSY, never decided without one', async () => {
  const hold = { waiting: [] as Array<() => void> }
  const { gitlab, lists } = standIn([], hold)
  const finder = createProjectFinder({ gitlab })
  // Many jobs' builds (each job may have 128 waiting: the next test).
  const outcomes = Array.from({ length: 8 + 1024 + 5 }, (_, i) => find(finder, `com/acme/made-up-${i}/1.0/x.jar`, 1 + i % 16).then(found => found, (err: unknown) => err))
  const refused = await Promise.all(outcomes.slice(8 + 1024))
  for (const err of refused) assert.ok(err instanceof GateError && err.code === 'PROJECT_LOOKUPS_BUSY', String(err))
  assert.equal(lists(), 8)
  // Paths of a name being read wait for that listing, and take no place in the queue.
  const shared = find(finder, 'com/acme/made-up-0/2.0/x.jar')
  // Each listing released lets the next waiting one ask.
  let settled = false
  void Promise.all([...outcomes, shared]).then(() => { settled = true })
  while (!settled) {
    assert.ok(hold.waiting.length <= 8, 'never more than eight asked at once')
    for (const release of hold.waiting.splice(0)) release()
    await new Promise(resolve => setImmediate(resolve))
  }
  for (const found of await Promise.all(outcomes.slice(0, 8 + 1024))) assert.deepEqual(found, { kind: 'no_project' })
  assert.deepEqual(await shared, { kind: 'no_project' })
  assert.equal(lists(), 8 + 1024)
})

// One job naming a thousand made-up packages at once held every place in the queue, and every
// other build's uncached lookups were refused until it was done; a job may have 128 waiting.
test('one job may have 128 Maven lookups waiting; past them its own are refused, not another job\'s', async () => {
  const hold = { waiting: [] as Array<() => void> }
  const { gitlab, lists } = standIn([], hold)
  const finder = createProjectFinder({ gitlab })
  const flood = Array.from({ length: 8 + 128 + 3 }, (_, i) => find(finder, `com/acme/flood-${i}/1.0/x.jar`, 1).then(found => found, (err: unknown) => err))
  for (const err of await Promise.all(flood.slice(8 + 128))) assert.ok(err instanceof GateError && err.code === 'PROJECT_LOOKUPS_BUSY', String(err))
  // Another job's lookup takes a place behind them and is answered.
  const other = find(finder, 'com/acme/wanted/1.0/x.jar', 2)
  let settled = false
  void Promise.all([...flood, other]).then(() => { settled = true })
  while (!settled) {
    for (const release of hold.waiting.splice(0)) release()
    await new Promise(resolve => setImmediate(resolve))
  }
  assert.deepEqual(await other, { kind: 'no_project' })
  assert.equal(lists(), 8 + 128 + 1)
})
