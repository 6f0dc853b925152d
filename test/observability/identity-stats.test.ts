// The identity counters behind the metrics: job token cache lookups, introspection calls by
// endpoint and outcome, JWKS refreshes and failures.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createIntrospectionResolver, createLocalJwtResolver } from '../../src/identity/resolver.ts'
import { createGitlabClient } from '../../src/gitlab/client.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { createTestKeys, GITLAB_ISSUER, signIdToken } from '../helpers/tokens.ts'

const CLAIMS = { project_id: '10', project_path: 'acme/app', namespace_id: '3', namespace_path: 'acme', user_id: '7', job_id: '1001' }

test('local JWT resolver: JWKS refreshes and failures, token cache hits', async (t) => {
  const k1 = await createTestKeys('k1')
  const fake = await startFakeGitlab({ jwks: { keys: [k1.publicJwk] } })
  t.after(() => fake.close())
  const clock = { t: Date.now() }
  const resolver = createLocalJwtResolver({
    // The fetch timeout is only a hang detector: 300 ms failed the first fetch on a busy machine.
    key: { jwksUrl: `${fake.url}/oauth/discovery/keys`, cacheMaxAgeMs: 100, cooldownMs: 200, timeoutMs: 10_000 },
    issuer: GITLAB_ISSUER,
    audience: 'gate',
    cache: { clock: { now: () => clock.t } },
    onWarning: () => {}
  })
  const token = await signIdToken(k1, CLAIMS, { audience: 'gate' })
  await resolver.resolve(token)
  await resolver.resolve(token)
  let s = resolver.stats!()
  assert.equal(s.jwksRefreshes, 1)
  assert.equal(s.jwksFailures, 0)
  assert.deepEqual(s.tokenCache, { hits: 1, negativeHits: 0, misses: 1, singleFlightWaits: 0 })

  fake.failWith.jwks = 503
  clock.t += 100 // the keys are now stale: the next token refetches
  await resolver.resolve(await signIdToken(k1, { ...CLAIMS, job_id: '1002' }, { audience: 'gate' }))
  s = resolver.stats!()
  assert.equal(s.jwksFailures, 1)
  assert.equal(s.jwksRefreshes, 1)
  assert.deepEqual(s.introspection, {}, 'the local resolver never calls GitLab')
})

test('introspection resolver: calls counted by endpoint and outcome', async (t) => {
  const fake = await startFakeGitlab({
    jobs: { 'glcbt-64_running000000000000000': { id: 1, status: 'running', projectId: 100, userId: 7 } },
    groups: [{ id: 10, fullPath: 'acme', parentId: null }],
    projects: [{ id: 100, pathWithNamespace: 'acme/app', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } }]
  })
  t.after(() => fake.close())
  const resolver = createIntrospectionResolver({ upstream: fake.url, serviceToken: fake.serviceToken, cache: { negativeTtlMs: 0 } })
  t.after(() => resolver.close())
  await resolver.resolve('glcbt-64_running000000000000000')
  await assert.rejects(resolver.resolve('glcbt-64_unknown000000000000000'))
  fake.failWith.job = 503
  await assert.rejects(resolver.resolve('glcbt-64_other00000000000000000'))
  fake.failWith.job = 404
  await assert.rejects(resolver.resolve('glcbt-64_third00000000000000000'))
  assert.deepEqual(resolver.stats!().introspection, { 'job:ok': 1, 'project:ok': 1, 'job:rejected': 1, 'job:unavailable': 1, 'job:failed': 1 })
})

test('introspection resolver on a shared GitLab client: only identity\'s endpoints count as introspection; the client stays open', async (t) => {
  const fake = await startFakeGitlab({
    jobs: { 'glcbt-64_running000000000000000': { id: 1, status: 'running', projectId: 100, userId: 7 } },
    projects: [{ id: 100, pathWithNamespace: 'acme/app', namespace: { id: 10, kind: 'user', fullPath: 'acme', parentId: null } }]
  })
  t.after(() => fake.close())
  const gitlab = createGitlabClient({ url: fake.url, serviceToken: fake.serviceToken })
  t.after(() => gitlab.close())
  const resolver = createIntrospectionResolver({ upstream: fake.url, serviceToken: fake.serviceToken, gitlab })
  await resolver.resolve('glcbt-64_running000000000000000')
  await gitlab.get('/api/v4/projects/100', { endpoint: 'project_access', as: 'service' })
  await resolver.close()
  assert.deepEqual(resolver.stats!().introspection, { 'job:ok': 1, 'project:ok': 1 })
  assert.deepEqual(gitlab.stats(), { 'job:ok': 1, 'project:ok': 1, 'project_access:ok': 1 })
  assert.equal((await gitlab.get('/api/v4/projects/100', { endpoint: 'project_access', as: 'service' })).status, 200, 'closing the resolver left the shared client open')
})
