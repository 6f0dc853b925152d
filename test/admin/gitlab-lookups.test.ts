// The configuration API's project and user lookups (src/admin/auth.ts): what is cached, by what
// key, for how long, and how they share the gate's GitLab client. Time is a clock moved by hand.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createGitlabClient } from '../../src/admin/auth.ts'
import { createGitlabClient as createGitlabApi, type GitlabClient as GitlabApi } from '../../src/gitlab/client.ts'
import { tokenKey } from '../../src/identity/cache.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'

const MIA = 'glpat-mia-000000000000'

async function fixture (t: { after: (fn: () => Promise<void>) => void }) {
  const fake = await startFakeGitlab({
    projects: [{ id: 200, pathWithNamespace: 'acme/app', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } }],
    users: { [MIA]: { id: 41, username: 'mia', access: { 200: 40 } } }
  })
  t.after(() => fake.close())
  let now = 1_000_000 // lru-cache reads a start time of 0 as "no TTL"
  const clock = { now: () => now, advance: (ms: number) => { now += ms } }
  return { fake, clock }
}

test('a found project is reused for the TTL by token hash; concurrent lookups share one call', async t => {
  const { fake, clock } = await fixture(t)
  const api = createGitlabApi({ url: fake.url })
  t.after(() => api.close())
  const gitlab = createGitlabClient({ upstreamUrl: fake.url, relativeUrlRoot: '', ttlMs: 30_000, client: api, clock })
  const header = { 'private-token': MIA }
  const answers = await Promise.all(Array.from({ length: 10 }, () => gitlab.project('200', header, tokenKey(MIA))))
  for (const a of answers) assert.deepEqual(a, { kind: 'found', id: 200, path: 'acme/app', accessLevel: 40 })
  assert.equal(fake.calls.project, 1)
  clock.advance(30_000)
  await gitlab.project('200', header, tokenKey(MIA))
  assert.equal(fake.calls.project, 1, 'within the TTL')
  clock.advance(1)
  await gitlab.project('200', header, tokenKey(MIA))
  assert.equal(fake.calls.project, 2, 'asked again after it')
  await gitlab.project('200', header, null)
  await gitlab.project('200', header, null)
  assert.equal(fake.calls.project, 4, 'no cache key, no cache')
  assert.deepEqual(api.stats(), { 'project_access:ok': 4 }, 'counted by the shared client under the lookup\'s own endpoint name')
  await gitlab.close()
  assert.ok((await api.get('/api/v4/projects/200', { endpoint: 'project', as: { 'private-token': MIA } })).status === 200, 'a shared client stays open')
})

test('refusals and outages are never remembered; the user lookup likewise', async t => {
  const { fake, clock } = await fixture(t)
  const gitlab = createGitlabClient({ upstreamUrl: fake.url, relativeUrlRoot: '', clock })
  t.after(() => gitlab.close())
  const stranger = { 'private-token': 'glpat-nobody' }
  assert.deepEqual(await gitlab.project('200', stranger, tokenKey('glpat-nobody')), { kind: 'unauthenticated' })
  assert.deepEqual(await gitlab.project('200', stranger, tokenKey('glpat-nobody')), { kind: 'unauthenticated' })
  assert.equal(fake.calls.project, 2)
  fake.failWith.project = 503
  assert.equal((await gitlab.project('200', { 'private-token': MIA }, tokenKey(MIA))).kind, 'unavailable')
  delete fake.failWith.project
  assert.equal((await gitlab.project('200', { 'private-token': MIA }, tokenKey(MIA))).kind, 'found')
  assert.equal(fake.calls.project, 4)

  assert.equal(await gitlab.user(stranger, tokenKey('glpat-nobody')), null)
  assert.deepEqual(await gitlab.user({ 'private-token': MIA }, tokenKey(MIA)), { id: 41, username: 'mia' })
  assert.ok(fake.targets.every(target => !target.includes('glpat')), 'tokens travel in headers only')
})

test('GitLab unreachable is unavailable, with a detail that names no token', async t => {
  const gitlab = createGitlabClient({ upstreamUrl: 'http://127.0.0.1:1', relativeUrlRoot: '/gitlab', timeoutMs: 500 })
  t.after(() => gitlab.close())
  const found = await gitlab.project('200', { 'private-token': MIA }, tokenKey(MIA))
  assert.equal(found.kind, 'unavailable')
  assert.ok(found.kind === 'unavailable' && !found.detail.includes(MIA))
  assert.equal(await gitlab.user({ 'private-token': MIA }, tokenKey(MIA)), null)
  assert.deepEqual(gitlab.stats(), { 'project_access:unavailable': 1, 'user:unavailable': 1 })
})

test('a moved project\'s old path follows GitLab\'s redirect to its id once; an answer for another id than asked is no answer', async () => {
  const asked: string[] = []
  const answers: Record<string, { status: number, body?: Record<string, unknown>, location?: string }> = {
    '/api/v4/projects/acme%2Fold': { status: 301, location: 'http://gitlab/api/v4/projects/200' },
    '/api/v4/projects/200': { status: 200, body: { id: 200, path_with_namespace: 'acme/app', permissions: { project_access: { access_level: 40 } } } },
    '/api/v4/projects/300': { status: 200, body: { id: 301, path_with_namespace: 'acme/other', permissions: { project_access: { access_level: 50 } } } },
    '/api/v4/projects/400': { status: 301, location: 'http://gitlab/api/v4/projects/200' },
    '/api/v4/projects/acme%2Felsewhere': { status: 301, location: 'http://gitlab/users/sign_in' }
  }
  const api: GitlabApi = {
    hasServiceToken: false,
    async get (path) { asked.push(path); const a = answers[path]!; return { status: a.status, body: a.body, ...(a.location === undefined ? {} : { location: a.location }) } },
    async getList () { throw new Error('not asked') },
    stats: () => ({}),
    async close () {}
  }
  const gitlab = createGitlabClient({ upstreamUrl: 'http://gitlab', relativeUrlRoot: '', client: api })
  const header = { 'private-token': MIA }
  assert.deepEqual(await gitlab.project('acme%2Fold', header, null), { kind: 'found', id: 200, path: 'acme/app', accessLevel: 40 })
  assert.deepEqual(asked, ['/api/v4/projects/acme%2Fold', '/api/v4/projects/200'])
  assert.equal((await gitlab.project('300', header, null)).kind, 'unavailable', 'project 301 answered for 300')
  assert.equal((await gitlab.project('400', header, null)).kind, 'unavailable', 'an id is never redirected')
  assert.equal((await gitlab.project('acme%2Felsewhere', header, null)).kind, 'unavailable', 'a redirect elsewhere is not followed')
})
