// The accessed project's facts (src/projects/facts.ts) on a fake GitLab: what is read from
// GET /api/v4/projects/:id, the cache (TTL on an injected clock, single flight, by id and by path),
// a project GitLab does not show, the anonymous call without a service token, and failing closed.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GateError } from '../../src/errors.ts'
import { createGitlabClient } from '../../src/gitlab/client.ts'
import { createProjectFactsLookup, type ProjectFacts } from '../../src/projects/facts.ts'
import { startFakeGitlab, type FakeProject } from '../helpers/fake-gitlab.ts'

const project = (id: number, path: string, visibility?: FakeProject['visibility'], accessLevels?: FakeProject['accessLevels']): FakeProject => ({
  id, pathWithNamespace: path, namespace: { id: 10, kind: 'group', fullPath: path.split('/')[0]!, parentId: null },
  ...(visibility === undefined ? {} : { visibility }), ...(accessLevels === undefined ? {} : { accessLevels })
})

test('facts: visibility, short and full path, and every *_access_level', async t => {
  const gitlab = await startFakeGitlab({ projects: [project(200, 'acme/sub/lib', 'internal', { package_registry: 'public', builds: 'private', releases: 'disabled' })] })
  t.after(() => gitlab.close())
  const client = createGitlabClient({ url: gitlab.url, serviceToken: gitlab.serviceToken })
  t.after(() => client.close())
  const facts = await createProjectFactsLookup({ gitlab: client }).get(200)
  assert.equal(facts.id, 200)
  assert.equal(facts.path, 'lib')
  assert.equal(facts.fullPath, 'acme/sub/lib')
  assert.equal(facts.visibility, 'internal')
  assert.equal(facts.features.package_registry, 'public')
  assert.equal(facts.features.builds, 'private')
  assert.equal(facts.features.releases, 'disabled')
  assert.equal(facts.features.container_registry, 'enabled')
  assert.ok(!('namespace' in facts.features), 'only *_access_level fields')
})

test('facts: cached for the TTL on the injected clock, one call for concurrent lookups, by id and by path', async t => {
  const gitlab = await startFakeGitlab({ projects: [project(200, 'acme/lib', 'public')] })
  t.after(() => gitlab.close())
  const client = createGitlabClient({ url: gitlab.url, serviceToken: gitlab.serviceToken })
  t.after(() => client.close())
  let now = 1_000
  const lookup = createProjectFactsLookup({ gitlab: client, ttlMs: 5_000, clock: { now: () => now } })
  const [a, b] = await Promise.all([lookup.get(200), lookup.get(200)])
  assert.equal(a, b)
  assert.equal(gitlab.calls.project, 1, 'single flight')
  const hit = lookup.get(200)
  assert.ok(!(hit instanceof Promise), 'a cached answer is synchronous')
  assert.equal((hit as ProjectFacts).visibility, 'public')
  now += 4_999
  lookup.get(200)
  assert.equal(gitlab.calls.project, 1, 'within the TTL')
  now += 2
  await lookup.get(200)
  assert.equal(gitlab.calls.project, 2, 'asked again after it')

  const byPath = await lookup.get('ACME/lib')
  assert.equal(byPath.id, 200)
  assert.equal(gitlab.calls.project, 3)
  await lookup.get('acme/LIB')
  assert.equal(gitlab.calls.project, 3, 'paths are cached case-insensitively')
  assert.deepEqual(lookup.stats(), { hits: 3, misses: 4 })

  // Found by path first, the project is cached by its id too: the decide stage asks by id next.
  const byPathFirst = createProjectFactsLookup({ gitlab: client, ttlMs: 5_000, clock: { now: () => now } })
  await byPathFirst.get('acme/lib')
  const hitById = byPathFirst.get(200)
  assert.ok(!(hitById instanceof Promise), 'the id is cached by the path lookup')
  assert.equal(hitById.id, 200)
  assert.equal(gitlab.calls.project, 4)
})

test('facts: a project GitLab does not show is private, without a path', async t => {
  const gitlab = await startFakeGitlab({ projects: [] })
  t.after(() => gitlab.close())
  const client = createGitlabClient({ url: gitlab.url, serviceToken: gitlab.serviceToken })
  t.after(() => client.close())
  const facts = await createProjectFactsLookup({ gitlab: client }).get(404)
  assert.deepEqual({ ...facts }, { id: 404, path: null, fullPath: null, visibility: 'private', features: {} })
})

test('facts: without a service token the call is anonymous and shows public projects only', async t => {
  const gitlab = await startFakeGitlab({ projects: [project(1, 'oss/open', 'public'), project(2, 'corp/internal', 'internal')] })
  t.after(() => gitlab.close())
  const client = createGitlabClient({ url: gitlab.url })
  t.after(() => client.close())
  const lookup = createProjectFactsLookup({ gitlab: client })
  assert.equal((await lookup.get(1)).visibility, 'public')
  const hidden = await lookup.get(2)
  assert.equal(hidden.visibility, 'private', 'an internal project is not shown anonymously: the stricter answer')
  assert.equal(hidden.path, null)
})

test('facts: GitLab unreachable or failing is a 503, a refused token or an unreadable answer a 502; failures are not kept', async t => {
  const gitlab = await startFakeGitlab({ projects: [project(200, 'acme/lib', 'public')] })
  t.after(() => gitlab.close())
  const client = createGitlabClient({ url: gitlab.url, serviceToken: gitlab.serviceToken })
  t.after(() => client.close())
  const lookup = createProjectFactsLookup({ gitlab: client })
  const code = async (expected: string): Promise<void> => {
    await assert.rejects(async () => await lookup.get(200), (err: unknown) => err instanceof GateError && err.code === expected)
  }
  for (const status of [500, 502, 503, 429]) {
    gitlab.failWith.project = status
    await code('PROJECT_LOOKUP_UNAVAILABLE')
  }
  for (const status of [401, 403, 400]) {
    gitlab.failWith.project = status
    await code('PROJECT_LOOKUP_FAILED')
  }
  delete gitlab.failWith.project
  assert.equal((await lookup.get(200)).visibility, 'public', 'no failure was cached')

  const down = createGitlabClient({ url: 'http://127.0.0.1:1', serviceToken: 'x', timeoutMs: 2_000 })
  t.after(() => down.close())
  await assert.rejects(async () => await createProjectFactsLookup({ gitlab: down }).get(200), (err: unknown) => err instanceof GateError && err.code === 'PROJECT_LOOKUP_UNAVAILABLE')
})

test('facts: an answer by id for another project is a 502, and not kept', async t => {
  const gitlab = await startFakeGitlab({ projects: [project(200, 'acme/lib', 'public')] })
  t.after(() => gitlab.close())
  const client = createGitlabClient({ url: gitlab.url, serviceToken: gitlab.serviceToken })
  t.after(() => client.close())
  const lookup = createProjectFactsLookup({ gitlab: client })
  // Whatever is asked for as 300 answers acme/lib (id 200), as a cache in front of GitLab that mixed them up would.
  gitlab.projects.set(300, project(200, 'acme/lib', 'public'))
  await assert.rejects(async () => await lookup.get(300), (err: unknown) => err instanceof GateError && err.code === 'PROJECT_LOOKUP_FAILED')
  gitlab.projects.set(300, project(300, 'other/tools', 'private'))
  assert.equal((await lookup.get(300)).id, 300, 'the failure was not kept')
})

test('facts: by path, a moved project\'s old path is followed to the project (a 301 to /projects/<id>), and the path\'s new holder wins', async t => {
  const gitlab = await startFakeGitlab({ projects: [project(700, 'acme/registry-old')], redirects: { 'acme/registry': 700 } })
  t.after(() => gitlab.close())
  const client = createGitlabClient({ url: gitlab.url, serviceToken: gitlab.serviceToken })
  t.after(() => client.close())
  const moved = await createProjectFactsLookup({ gitlab: client }).get('acme/Registry')
  assert.equal(moved.id, 700)
  assert.equal(moved.fullPath, 'acme/registry-old')
  // GitLab deletes a redirect when a project takes the path: the holder is then found.
  gitlab.projects.set(701, project(701, 'acme/registry'))
  const held = await createProjectFactsLookup({ gitlab: client }).get('acme/registry')
  assert.equal(held.id, 701)
  // No project there: id 0.
  assert.equal((await createProjectFactsLookup({ gitlab: client }).get('other/none')).id, 0)
})

test('facts: "no project here" answers, which any client can ask for, do not push out the projects jobs use', async t => {
  const gitlab = await startFakeGitlab({ projects: [project(200, 'acme/lib', 'public')] })
  t.after(() => gitlab.close())
  const client = createGitlabClient({ url: gitlab.url, serviceToken: gitlab.serviceToken })
  t.after(() => client.close())
  const lookup = createProjectFactsLookup({ gitlab: client, max: 4 })
  assert.equal((await lookup.get('acme/lib')).id, 200)
  const calls = gitlab.calls.project
  // Twenty made-up paths (a flood of package PUTs with made-up tokens, say): each asked once.
  for (let i = 0; i < 20; i++) assert.equal((await lookup.get(`nosuch/p${i}`)).path, null)
  assert.equal(gitlab.calls.project, calls + 20)
  const again = lookup.get('acme/lib')
  assert.ok(!(again instanceof Promise), 'still cached')
  assert.equal((again as ProjectFacts).id, 200)
  assert.equal(gitlab.calls.project, calls + 20)
  // The answers not shown are cached too, in a list of their own.
  assert.ok(!(lookup.get('nosuch/p19') instanceof Promise))
  assert.equal(gitlab.calls.project, calls + 20)
})

test('facts: a flood of "no project here" lookups, at once, into a full cache: the projects found stay', async t => {
  const gitlab = await startFakeGitlab({ projects: [project(200, 'acme/lib', 'public'), project(300, 'acme/app', 'public')] })
  t.after(() => gitlab.close())
  const client = createGitlabClient({ url: gitlab.url, serviceToken: gitlab.serviceToken })
  t.after(() => client.close())
  // Two projects by path fill four entries (by path and by id).
  const lookup = createProjectFactsLookup({ gitlab: client, max: 4 })
  assert.equal((await lookup.get('acme/lib')).id, 200)
  assert.equal((await lookup.get('acme/app')).id, 300)
  // Loads in flight once took a place in the list of projects found, pushing the oldest out.
  await Promise.all(Array.from({ length: 10 }, async (_, i) => await lookup.get(`nosuch/p${i}`)))
  const calls = gitlab.calls.project
  for (const key of ['acme/lib', 'acme/app', 200, 300]) assert.ok(!(lookup.get(key) instanceof Promise), `${key} still cached`)
  assert.equal(gitlab.calls.project, calls)
  // Concurrent lookups of one key still share one call.
  const before = gitlab.calls.project
  await Promise.all([lookup.get('acme/new'), lookup.get('acme/new'), lookup.get('ACME/new')])
  assert.equal(gitlab.calls.project, before + 1)
})
