// The identity stage end to end: real requests, the introspection resolver, a fake GitLab.
// Answers: GitLab's 401 body with a reason code, the Basic realm on package routes, 503 when
// GitLab cannot be asked.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createIntrospectionResolver } from '../../src/identity/resolver.ts'
import { createIdentityStage } from '../../src/identity/stage.ts'
import { BASIC_AUTH_REALM, identityAnswer, isBasicAuthRoute } from '../../src/identity/answers.ts'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import { groupChain, startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { legacyJobToken } from '../helpers/tokens.ts'
import { basic, catalogRouter, rawRequest, startStageServer, type StageReport } from './harness.ts'

const RUNNING = legacyJobToken()
const FINISHED = legacyJobToken()
const MAVEN = '/api/v4/projects/42/packages/maven/com/example/app/1.0/app-1.0.jar'
const RELEASES = '/api/v4/projects/42/releases'

test('stage with GitLab introspection', async (t) => {
  const fake = await startFakeGitlab({
    groups: groupChain([1, 'acme'], [2, 'platform']),
    projects: [{ id: 10, pathWithNamespace: 'acme/platform/app', namespace: { id: 2, kind: 'group', fullPath: 'acme/platform', parentId: 1 } }],
    jobs: {
      [RUNNING]: { id: 1001, status: 'running', projectId: 10, userId: 7 },
      [FINISHED]: { id: 1002, status: 'failed', projectId: 10, userId: 7 }
    }
  })
  const resolver = createIntrospectionResolver({ upstream: fake.url, serviceToken: fake.serviceToken, timeoutMs: 300 })
  const server = await startStageServer({ resolver })
  t.after(async () => { await server.close(); await resolver.close(); await fake.close() })

  await t.test('a running job passes with its identity', async () => {
    const res = await rawRequest(server.port, [`GET ${MAVEN} HTTP/1.1`, `Authorization: ${basic('gitlab-ci-token', RUNNING)}`])
    assert.equal(res.status, 200, res.body)
    const report = JSON.parse(res.body) as StageReport
    assert.equal(report.kind, 'job')
    assert.equal(report.basicAuth, true)
    assert.deepEqual(report.identity, { jobId: 1001, jobProjectId: 10, jobProjectPath: 'acme/platform/app', ancestorGroupIds: [2, 1], userId: 7, pipelineId: 2001 })
  })

  await t.test('finished job on a Basic-auth route: 401, reason, realm', async () => {
    const res = await rawRequest(server.port, [`GET ${MAVEN} HTTP/1.1`, `Authorization: ${basic('gitlab-ci-token', FINISHED)}`])
    assert.equal(res.status, 401)
    assert.deepEqual(JSON.parse(res.body), { message: '401 Unauthorized', code: 'TOKEN_JOB_NOT_RUNNING' })
    assert.equal(res.headers['www-authenticate'], BASIC_AUTH_REALM)
    assert.ok(!res.body.includes(FINISHED))
  })

  await t.test('unknown token on an ordinary route: 401 without a realm', async () => {
    const res = await rawRequest(server.port, [`GET ${RELEASES} HTTP/1.1`, 'JOB-TOKEN: glcbt-64_unknownunknownunknown'])
    assert.equal(res.status, 401)
    assert.deepEqual(JSON.parse(res.body), { message: '401 Unauthorized', code: 'TOKEN_UNKNOWN' })
    assert.equal(res.headers['www-authenticate'], undefined)
  })

  await t.test('ambiguous credentials on Maven also carry the realm', async () => {
    const before = fake.calls.job
    const res = await rawRequest(server.port, [`GET ${MAVEN} HTTP/1.1`, `JOB-TOKEN: ${RUNNING}`, 'PRIVATE-TOKEN: glpat-somebodyelse00000'])
    assert.equal(res.status, 401)
    assert.equal((JSON.parse(res.body) as { code: string }).code, 'CREDENTIAL_AMBIGUOUS')
    assert.equal(res.headers['www-authenticate'], BASIC_AUTH_REALM)
    assert.equal(fake.calls.job, before, 'an ambiguous request is refused before any lookup')
  })

  await t.test('GitLab slow: 503 with a reason', async () => {
    fake.delayMs = 1000
    const res = await rawRequest(server.port, [`GET ${RELEASES} HTTP/1.1`, `JOB-TOKEN: ${legacyJobToken()}`])
    fake.delayMs = 0
    assert.equal(res.status, 503)
    assert.equal((JSON.parse(res.body) as { code: string }).code, 'IDENTITY_UPSTREAM_UNAVAILABLE')
  })

  await t.test('no job token: forwarded untouched, no lookup', async () => {
    const before = fake.calls.job
    const res = await rawRequest(server.port, [`GET ${RELEASES} HTTP/1.1`, 'PRIVATE-TOKEN: glpat-somebodyelse00000'])
    assert.equal((JSON.parse(res.body) as StageReport).kind, 'none')
    assert.equal(fake.calls.job, before)
  })
})

test('Basic-auth routes are the package formats GitLab serves behind Basic', () => {
  const routes = catalogRouter().routes
  const basicIds = new Set(routes.filter(isBasicAuthRoute).map(r => r.pattern.split('/').find((s, i, a) => a[i - 1] === 'packages' || s === 'terraform')))
  assert.deepEqual([...basicIds].sort(), ['composer', 'conan', 'debian', 'generic', 'helm', 'maven', 'nuget', 'pypi', 'terraform'])
  const byPattern = (pattern: string): CatalogRoute => ({ id: 'x', method: 'GET', pattern, policies: [], skipPolicies: false, resource: 'packages', title: '', accessedProject: 'project' })
  assert.equal(isBasicAuthRoute(byPattern('/projects/:id/packages/nuget/index')), true)
  assert.equal(isBasicAuthRoute(byPattern('/projects/:id/packages/npm/*package_name')), false)
  assert.equal(isBasicAuthRoute(null), false)
  assert.equal(identityAnswer('TOKEN_EXPIRED', byPattern('/projects/:id/terraform/state/:name')).headers['www-authenticate'], BASIC_AUTH_REALM)
  assert.equal(identityAnswer('IDENTITY_UPSTREAM_UNAVAILABLE', byPattern('/projects/:id/terraform/state/:name')).headers['www-authenticate'], undefined, 'only 401s ask for credentials')
})

test('a request without a body whose job is cached is identified without a promise; otherwise the stage awaits', async () => {
  const identity = { jobId: 1, jobProjectId: 10, jobProjectPath: 'acme/app', ancestorGroupIds: [2], userId: 7 }
  const cache = new Map<string, typeof identity>()
  let resolved = 0
  const stage = createIdentityStage({
    resolver: {
      resolve: async (token) => { resolved++; cache.set(token, identity); return identity },
      cached: token => cache.get(token)
    }
  })
  const input = (token: string, headers: Record<string, string> = {}): Parameters<typeof stage.run>[0] => ({
    canonical: { method: 'GET', path: RELEASES, query: '' },
    route: null,
    headers: { 'job-token': token, ...headers },
    rawHeaders: ['JOB-TOKEN', token, ...Object.entries(headers).flat()],
    body: null
  })
  const first = stage.run(input(RUNNING))
  assert.ok(first instanceof Promise, 'a token not cached is resolved')
  assert.equal((await first).kind, 'job')
  const second = stage.run(input(RUNNING))
  assert.ok(!(second instanceof Promise), 'a cached token is answered at once')
  assert.equal(second.kind === 'job' && second.identity, identity)
  assert.equal(resolved, 1)
  const ambiguous = stage.run(input(RUNNING, { 'private-token': 'glpat-somebodyelse00000' }))
  assert.ok(!(ambiguous instanceof Promise))
  assert.equal(ambiguous.kind === 'deny' && ambiguous.code, 'CREDENTIAL_AMBIGUOUS')
  const none = stage.run({ ...input(''), headers: {}, rawHeaders: [] })
  assert.equal(!(none instanceof Promise) && none.kind, 'none')
})
