// What the URL says, per family (a table), and the finder's cache and failures on a fake GitLab.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import { GateError } from '../../src/errors.ts'
import { createGitlabClient } from '../../src/gitlab/client.ts'
import type { JobIdentity } from '../../src/identity/types.ts'
import { createProjectFinder } from '../../src/projects/finder.ts'
import { PROJECT_FROM } from '../../src/catalog/types.ts'
import { cacheKeyOf, lookupOf, type Lookup } from '../../src/projects/lookup.ts'
import { Router } from '../../src/routing/router.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { REFUSED_PORT } from '../helpers/ports.ts'

const router = Router.compile(loadCatalog().routes)
const at = (method: string, path: string): Lookup => {
  const match = router.match(method, path)
  assert.ok(match, path)
  return lookupOf(match.route.projectFrom, match.params)
}

const table: Array<[string, string, string, Lookup]> = [
  ['conan path', 'PUT', '/packages/conan/v1/files/pkg/1.0/acme+platform+app/stable/0/export/conanfile.py', { kind: 'project_path', path: 'acme/platform/app', followRedirects: true }],
  ['conan id', 'GET', '/packages/conan/v1/conans/pkg/1.0/42/stable', { kind: 'project_id', id: 42 }],
  ['conan _', 'GET', '/packages/conan/v1/conans/pkg/1.0/_/_', { kind: 'no_project', why: 'the Conan username "_" names no project at instance level' }],
  ['conan plain name', 'DELETE', '/packages/conan/v1/conans/pkg/1.0/someone/stable', { kind: 'no_project', why: 'the Conan username has no "+": it is not a project path' }],
  ['conan ping', 'GET', '/packages/conan/v1/ping', { kind: 'unresolvable', why: 'the route touches no single project' }],
  ['maven instance', 'GET', '/packages/maven/com/acme/app/1.0/app-1.0.jar', { kind: 'project_path', path: 'com/acme/app', followRedirects: false }],
  ['npm scoped', 'PUT', '/packages/npm/-/package/@acme%2Ftool/dist-tags/latest', { kind: 'npm_package', at: 'instance', group: 'acme', name: '@acme/tool' }],
  ['npm unscoped', 'GET', '/packages/npm/left-pad', { kind: 'no_project', why: 'an unscoped npm package name names no namespace' }],
  ['npm audit', 'POST', '/packages/npm/-/npm/v1/security/audits/quick', { kind: 'unresolvable', why: 'the route touches no single project' }],
  ['npm group', 'DELETE', '/groups/acme%2Fsub/-/packages/npm/-/package/left-pad/dist-tags/beta', { kind: 'npm_package', at: 'group', group: 'acme/sub', name: 'left-pad' }],
  ['maven group', 'GET', '/groups/7/-/packages/maven/com/acme/app/1.0/app-1.0.jar', { kind: 'package', group: '7', format: 'maven', name: 'com/acme/app', version: '1.0', versionlessName: 'com/acme/app/1.0' }],
  ['pypi group file', 'GET', '/groups/7/-/packages/pypi/files/abc/pkg-1.0.tar.gz', { kind: 'unresolvable', why: "GitLab picks the file's package among those the job's user can read" }],
  ['composer', 'GET', '/group/7/-/packages/composer/packages', { kind: 'unresolvable', why: 'the route touches no single project' }],
  ['job artifacts', 'GET', '/jobs/77/artifacts', { kind: 'pipeline_job', jobId: 77 }]
]
for (const [name, method, path, expected] of table) {
  test(`lookup from the URL: ${name}`, () => {
    assert.deepEqual(at(method, path), expected)
  })
}

const identity: JobIdentity = { jobId: 1, jobProjectId: 100, jobProjectPath: 'acme/app', ancestorGroupIds: [10], userId: 7, pipelineId: 1001 }
const route = (method: string, path: string): [ReturnType<Router['match']> & object] => [router.match(method, path)!]

test('finder: "no project" is kept briefly, a found project for the TTL, on the injected clock', async t => {
  const gitlab = await startFakeGitlab({ projects: [{ id: 200, pathWithNamespace: 'acme/lib', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } }] })
  t.after(() => gitlab.close())
  const client = createGitlabClient({ url: gitlab.url, serviceToken: gitlab.serviceToken })
  t.after(() => client.close())
  let now = 1_000
  const finder = createProjectFinder({ gitlab: client, ttlMs: 60_000, notFoundTtlMs: 5_000, clock: { now: () => now } })
  const [lib] = route('GET', '/packages/maven/acme/lib/1.0/lib-1.0.jar')
  const [none] = route('GET', '/packages/maven/acme/none/1.0/none-1.0.jar')
  assert.deepEqual(await finder.find(lib.route, lib.params, identity), { kind: 'project', id: 200 })
  assert.deepEqual(await finder.find(none.route, none.params, identity), { kind: 'no_project' })
  assert.equal(gitlab.calls.project, 2)
  now += 4_000
  await finder.find(lib.route, lib.params, identity)
  await finder.find(none.route, none.params, identity)
  assert.equal(gitlab.calls.project, 2, 'both cached')
  now += 2_000
  await finder.find(none.route, none.params, identity)
  await finder.find(lib.route, lib.params, identity)
  assert.equal(gitlab.calls.project, 3, '"no project" asked again after 5 s, the project not')
  now += 60_000
  await finder.find(lib.route, lib.params, identity)
  assert.equal(gitlab.calls.project, 4, 'the project asked again after the TTL')
  assert.equal(finder.stats().projects.hits, 3)
})

test('finder: GitLab unreachable is PROJECT_LOOKUP_UNAVAILABLE (503); a refused service token PROJECT_LOOKUP_FAILED (502); neither is cached', async t => {
  const gitlab = await startFakeGitlab({})
  t.after(() => gitlab.close())
  const [conan] = route('GET', '/packages/conan/v1/conans/pkg/1.0/42/stable')
  const refusing = createGitlabClient({ url: gitlab.url, serviceToken: 'not-the-service-token' })
  t.after(() => refusing.close())
  const failed = await Promise.resolve().then(() => createProjectFinder({ gitlab: refusing }).find(conan.route, conan.params, identity)).catch((err: unknown) => err)
  assert.ok(failed instanceof GateError)
  assert.deepEqual([failed.code, failed.status], ['PROJECT_LOOKUP_FAILED', 502])
  const client = createGitlabClient({ url: `http://127.0.0.1:${REFUSED_PORT}`, serviceToken: 'x', timeoutMs: 2_000 })
  t.after(() => client.close())
  const finder = createProjectFinder({ gitlab: client })
  for (let i = 0; i < 2; i++) {
    const err = await Promise.resolve().then(() => finder.find(conan.route, conan.params, identity)).catch((e: unknown) => e)
    assert.ok(err instanceof GateError)
    assert.deepEqual([err.code, err.status], ['PROJECT_LOOKUP_UNAVAILABLE', 503])
  }
  assert.equal(client.stats()['project_lookup:unavailable'], 2, 'asked again: failures are not kept')
})

test('finder: a project answered by id for another id is PROJECT_LOOKUP_FAILED (502), and not kept', async t => {
  const gitlab = await startFakeGitlab({ projects: [{ id: 42, pathWithNamespace: 'acme/lib', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } }] })
  t.after(() => gitlab.close())
  const client = createGitlabClient({ url: gitlab.url, serviceToken: gitlab.serviceToken })
  t.after(() => client.close())
  const [conan] = route('GET', '/packages/conan/v1/conans/pkg/1.0/42/stable')
  // Asked for 42, the answer is project 43's, as a cache in front of GitLab that mixed them up would give.
  gitlab.projects.set(42, { id: 43, pathWithNamespace: 'acme/other', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } })
  const finder = createProjectFinder({ gitlab: client })
  const err = await Promise.resolve().then(() => finder.find(conan.route, conan.params, identity)).catch((e: unknown) => e)
  assert.ok(err instanceof GateError)
  assert.deepEqual([err.code, err.status], ['PROJECT_LOOKUP_FAILED', 502])
  gitlab.projects.set(42, { id: 42, pathWithNamespace: 'acme/lib', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } })
  const found = await finder.find(conan.route, conan.params, identity)
  assert.deepEqual(found, { kind: 'project', id: 42 })
})

test('finder: without the token\'s pipeline id, another job stays unresolved; the own job is self', async t => {
  const client = createGitlabClient({ url: 'http://127.0.0.1:9', serviceToken: 'x' })
  t.after(() => client.close())
  const finder = createProjectFinder({ gitlab: client })
  const [other] = route('GET', '/jobs/5/artifacts')
  const [own] = route('GET', '/jobs/1/artifacts')
  const { pipelineId: _, ...noPipeline } = identity
  assert.deepEqual(await finder.find(other.route, other.params, noPipeline), { kind: 'unresolved' })
  assert.deepEqual(await finder.find(own.route, own.params, noPipeline), { kind: 'project', id: 100 })
})

test('every lookup the finder caches has a cache key of its own parameters (two ids are two keys)', () => {
  const params = (n: string): Record<string, string> => ({ id: `g${n}`, project_id: n, package_username: `u${n}`, path: `a/b${n}/1.0/f`, package_name: `@s/p${n}` })
  for (const from of PROJECT_FROM) {
    const kind = lookupOf(from, params('7')).kind
    if (kind !== 'project_id' && kind !== 'project_path' && kind !== 'package' && kind !== 'npm_package') continue
    const [a, b] = [cacheKeyOf(from, params('7')), cacheKeyOf(from, params('8'))]
    assert.ok(a !== null && b !== null && a !== b, `${from}: keys ${String(a)} and ${String(b)}`)
  }
})
