// The GitLab introspection resolver against a fake GitLab on port 0: identities and ancestors,
// caching and single flight, local JWT checks before any call, and failing closed.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createIntrospectionResolver, type IntrospectionResolverOptions } from '../../src/identity/resolver.ts'
import { identityAnswer } from '../../src/identity/answers.ts'
import { IdentityError, type ClosableJobResolver } from '../../src/identity/types.ts'
import { groupChain, startFakeGitlab, type FakeGitlab } from '../helpers/fake-gitlab.ts'
import { createTestKeys, GITLAB_ISSUER, hs256WithPublicKey, legacyJobToken, plausibleClaims, signJobToken, unsignedJobToken } from '../helpers/tokens.ts'
import { REFUSED_PORT } from '../helpers/ports.ts'

const RUNNING = legacyJobToken()
const RUNNING_2 = legacyJobToken()
const FINISHED = legacyJobToken()
const IN_USER_NAMESPACE = legacyJobToken()
const UNKNOWN = legacyJobToken()

async function fakeGitlab (): Promise<FakeGitlab> {
  return await startFakeGitlab({
    groups: groupChain([1, 'acme'], [2, 'platform'], [3, 'ci']),
    projects: [
      { id: 10, pathWithNamespace: 'acme/platform/ci/app', namespace: { id: 3, kind: 'group', fullPath: 'acme/platform/ci', parentId: 2 } },
      { id: 20, pathWithNamespace: 'alice/tool', namespace: { id: 50, kind: 'user', fullPath: 'alice', parentId: null } }
    ],
    jobs: {
      [RUNNING]: { id: 1001, status: 'running', projectId: 10, userId: 7 },
      [RUNNING_2]: { id: 1002, status: 'running', projectId: 10, userId: 8 },
      [FINISHED]: { id: 1003, status: 'success', projectId: 10, userId: 7 },
      [IN_USER_NAMESPACE]: { id: 1004, status: 'running', projectId: 20, userId: 9 }
    }
  })
}

function resolverFor (fake: FakeGitlab, extra: Partial<IntrospectionResolverOptions> = {}): ClosableJobResolver {
  return createIntrospectionResolver({ upstream: fake.url, serviceToken: fake.serviceToken, timeoutMs: 1000, ...extra })
}

/** Asserts the promise fails with `code`, and that no token shows in the error. */
async function rejectsWith (work: Promise<unknown>, code: string, token?: string): Promise<IdentityError> {
  try {
    await work
  } catch (err) {
    assert.ok(err instanceof IdentityError, `expected an IdentityError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    if (token !== undefined) assert.ok(!err.message.includes(token) && !String(err.stack).includes(token), 'the error never carries the token')
    return err
  }
  assert.fail(`expected ${code}, but it resolved`)
}

test('introspection: identity, ancestors nearest first, namespace cache', async (t) => {
  const fake = await fakeGitlab()
  const resolver = resolverFor(fake)
  t.after(async () => { await resolver.close(); await fake.close() })

  const identity = await resolver.resolve(RUNNING)
  assert.deepEqual(identity, { jobId: 1001, jobProjectId: 10, jobProjectPath: 'acme/platform/ci/app', ancestorGroupIds: [3, 2, 1], userId: 7, pipelineId: 2001 })
  assert.deepEqual(fake.calls, { job: 1, project: 1, group: 2, jwks: 0, packages: 0, group_projects: 0, npm_metadata: 0, namespace: 0, pipeline: 0, service_user: 0, registry_upstreams: 0, job_user: 0, token_self: 0, package_query: 0 })

  // Another job of the same project: one /job call, no project or group call.
  const second = await resolver.resolve(RUNNING_2)
  assert.equal(second.jobId, 1002)
  assert.deepEqual(second.ancestorGroupIds, [3, 2, 1])
  assert.deepEqual(fake.calls, { job: 2, project: 1, group: 2, jwks: 0, packages: 0, group_projects: 0, npm_metadata: 0, namespace: 0, pipeline: 0, service_user: 0, registry_upstreams: 0, job_user: 0, token_self: 0, package_query: 0 })

  // The same token again: cached.
  assert.deepEqual(await resolver.resolve(RUNNING), identity)
  assert.equal(fake.calls.job, 2)

  const user = await resolver.resolve(IN_USER_NAMESPACE)
  assert.deepEqual(user.ancestorGroupIds, [], 'a project in a user namespace has no groups')

  // Tokens travel in the JOB-TOKEN header only; the service token in PRIVATE-TOKEN.
  for (const target of fake.targets) {
    for (const token of [RUNNING, RUNNING_2, IN_USER_NAMESPACE, fake.serviceToken]) assert.ok(!target.includes(token))
  }
})

test('introspection: finished and unknown jobs are 401 with a reason', async (t) => {
  const fake = await fakeGitlab()
  const resolver = resolverFor(fake)
  t.after(async () => { await resolver.close(); await fake.close() })

  const finished = await rejectsWith(resolver.resolve(FINISHED), 'TOKEN_JOB_NOT_RUNNING', FINISHED)
  const answer = identityAnswer(finished.code, null)
  assert.equal(answer.status, 401)
  assert.deepEqual(answer.body, { message: '401 Unauthorized', code: 'TOKEN_JOB_NOT_RUNNING' })
  assert.equal(fake.calls.project, 0, 'a finished job costs no namespace lookup')

  await rejectsWith(resolver.resolve(UNKNOWN), 'TOKEN_UNKNOWN', UNKNOWN)
})

// GitLab accepts the token of a job a runner took but has not acknowledged yet (two-phase job
// assignment: pending, waiting_for_runner_ack?), and GET /job answers 200 for it; the gate
// refused it for the negative TTL (10 s) as a job not running. It passes now, never kept: the
// runner may still decline the job, and GitLab then refuses its token.
test('introspection: a job awaiting its runner\'s acknowledgment (pending, answered 200) resolves, and is asked again each time', async (t) => {
  const AWAITING = legacyJobToken()
  const CREATED = legacyJobToken()
  const fake = await startFakeGitlab({
    groups: groupChain([1, 'acme'], [2, 'platform'], [3, 'ci']),
    projects: [{ id: 10, pathWithNamespace: 'acme/platform/ci/app', namespace: { id: 3, kind: 'group', fullPath: 'acme/platform/ci', parentId: 2 } }],
    jobs: { [AWAITING]: { id: 1005, status: 'pending', projectId: 10, userId: 7 }, [CREATED]: { id: 1006, status: 'created', projectId: 10, userId: 7 } }
  })
  const resolver = resolverFor(fake)
  t.after(async () => { await resolver.close(); await fake.close() })
  assert.deepEqual(await resolver.resolve(AWAITING), { jobId: 1005, jobProjectId: 10, jobProjectPath: 'acme/platform/ci/app', ancestorGroupIds: [3, 2, 1], userId: 7, pipelineId: 2005 })
  assert.deepEqual(await resolver.resolve(AWAITING), { jobId: 1005, jobProjectId: 10, jobProjectPath: 'acme/platform/ci/app', ancestorGroupIds: [3, 2, 1], userId: 7, pipelineId: 2005 })
  assert.equal(fake.calls.job, 2, 'not kept: GitLab is asked again until the job runs')
  assert.equal(resolver.cached?.(AWAITING, undefined), undefined)
  // Declined by the runner meanwhile: GitLab refuses the token, and so does the gate at once.
  fake.jobs.set(AWAITING, { id: 1005, status: 'failed', projectId: 10, userId: 7 })
  await rejectsWith(resolver.resolve(AWAITING), 'TOKEN_JOB_NOT_RUNNING', AWAITING)
  // Other statuses GitLab refuses stay refused.
  await rejectsWith(resolver.resolve(CREATED), 'TOKEN_JOB_NOT_RUNNING', CREATED)
})

test('single flight: 100 concurrent requests with one uncached token make one introspection', async (t) => {
  const fake = await fakeGitlab()
  fake.delayMs = 50
  const resolver = resolverFor(fake)
  t.after(async () => { await resolver.close(); await fake.close() })

  const results = await Promise.all(Array.from({ length: 100 }, () => resolver.resolve(RUNNING)))
  assert.equal(fake.calls.job, 1)
  assert.equal(fake.calls.project, 1)
  assert.equal(fake.calls.group, 2)
  for (const r of results) assert.deepEqual(r, results[0])
})

test('negative cache: a flood of one bad token reaches GitLab once per negative TTL', async (t) => {
  const fake = await fakeGitlab()
  let now = Date.now()
  const resolver = resolverFor(fake, { cache: { negativeTtlMs: 300, clock: { now: () => now } } })
  t.after(async () => { await resolver.close(); await fake.close() })

  await Promise.all(Array.from({ length: 50 }, () => rejectsWith(resolver.resolve(UNKNOWN), 'TOKEN_UNKNOWN')))
  for (let i = 0; i < 20; i++) await rejectsWith(resolver.resolve(UNKNOWN), 'TOKEN_UNKNOWN')
  await rejectsWith(resolver.resolve(FINISHED), 'TOKEN_JOB_NOT_RUNNING')
  await rejectsWith(resolver.resolve(FINISHED), 'TOKEN_JOB_NOT_RUNNING')
  assert.equal(fake.calls.job, 2, 'one call for the unknown token, one for the finished job')

  now += 301
  await rejectsWith(resolver.resolve(UNKNOWN), 'TOKEN_UNKNOWN')
  assert.equal(fake.calls.job, 3, 'asked again once the negative entry expired')
})

test('upstream down: connection refused is a 503, never an allow', async (t) => {
  const resolver = createIntrospectionResolver({ upstream: `http://127.0.0.1:${REFUSED_PORT}`, serviceToken: 'svc', timeoutMs: 500 })
  t.after(() => resolver.close())

  const err = await rejectsWith(resolver.resolve(RUNNING), 'IDENTITY_UPSTREAM_UNAVAILABLE', RUNNING)
  const answer = identityAnswer(err.code, null)
  assert.equal(answer.status, 503)
  assert.equal(answer.body.code, 'IDENTITY_UPSTREAM_UNAVAILABLE')
})

test('upstream slow: bounded timeout, 503, and not remembered as a bad token', async (t) => {
  const fake = await fakeGitlab()
  // A timeout a loaded machine's lookups stay well within (the second lookup must pass), and a
  // delay well past it; the bound on giving up only detects a hang (ten times the timeout).
  const resolver = resolverFor(fake, { timeoutMs: 1000, cache: { negativeTtlMs: 60_000 } })
  t.after(async () => { await resolver.close(); await fake.close() })

  fake.delayMs = 5000
  const started = Date.now()
  await rejectsWith(resolver.resolve(RUNNING), 'IDENTITY_UPSTREAM_UNAVAILABLE')
  assert.ok(Date.now() - started < 10_000, `gave up after ${Date.now() - started} ms`)

  fake.delayMs = 0
  const identity = await resolver.resolve(RUNNING)
  assert.equal(identity.jobId, 1001)
  assert.equal(fake.calls.job, 2, 'the timeout was not cached as a verdict')
})

test('upstream errors: 5xx is a 503, a misconfigured lookup a 502, neither cached', async (t) => {
  const fake = await fakeGitlab()
  const resolver = resolverFor(fake, { cache: { negativeTtlMs: 60_000 } })
  t.after(async () => { await resolver.close(); await fake.close() })

  fake.failWith.job = 502
  await rejectsWith(resolver.resolve(RUNNING), 'IDENTITY_UPSTREAM_UNAVAILABLE')
  delete fake.failWith.job
  fake.failWith.group = 500
  await rejectsWith(resolver.resolve(RUNNING), 'IDENTITY_UPSTREAM_UNAVAILABLE')
  fake.failWith.group = 404
  await rejectsWith(resolver.resolve(RUNNING), 'IDENTITY_LOOKUP_FAILED')
  delete fake.failWith.group
  assert.equal((await resolver.resolve(RUNNING)).jobId, 1001)

  const wrongService = createIntrospectionResolver({ upstream: fake.url, serviceToken: 'glpat-wrong', timeoutMs: 1000 })
  t.after(() => wrongService.close())
  await rejectsWith(wrongService.resolve(RUNNING_2), 'IDENTITY_LOOKUP_FAILED')
})

test('JWT job tokens are checked locally before any upstream call', async (t) => {
  const fake = await fakeGitlab()
  const keys = await createTestKeys('gitlab-job-token-key')
  const otherKeys = await createTestKeys('gitlab-job-token-key') // same kid, different key
  const resolver = resolverFor(fake, { jwt: { key: { pem: keys.publicPem }, issuer: GITLAB_ISSUER } })
  t.after(async () => { await resolver.close(); await fake.close() })

  const valid = await signJobToken(keys, 1001)
  fake.jobs.set(valid, { id: 1001, status: 'running', projectId: 10, userId: 7 })
  const identity = await resolver.resolve(valid)
  assert.equal(identity.jobId, 1001)
  const exp = JSON.parse(Buffer.from(valid.split('.')[1]!, 'base64url').toString()) as { exp: number }
  assert.equal(identity.expiresAt, exp.exp * 1000)
  assert.equal(fake.calls.job, 1)

  const forged: Array<[string, string]> = [
    ['alg none', unsignedJobToken(plausibleClaims(1001))],
    ['HS256 signed with the public key as secret', await hs256WithPublicKey(keys, plausibleClaims(1001))],
    ['wrong audience', await signJobToken(keys, 1001, { audience: 'some-other-service' })],
    ['wrong issuer', await signJobToken(keys, 1001, { issuer: 'https://evil.example.com' })],
    ['expired', await signJobToken(keys, 1001, { expiresIn: -60 })],
    ['not yet valid', await signJobToken(keys, 1001, { notBefore: 600 })],
    ['bad signature', await signJobToken(otherKeys, 1001)],
    ['oversized', 'glcbt-' + 'a'.repeat(9000)],
    ['malformed JWT', 'glcbt-abc.def.ghi'],
    ['malformed characters', 'glcbt-abc\u00e9def'],
    ['token with a space', 'glcbt-64_abc def']
  ]
  const expected: Record<string, string> = {
    'alg none': 'TOKEN_ALG_NOT_ALLOWED',
    'HS256 signed with the public key as secret': 'TOKEN_ALG_NOT_ALLOWED',
    'wrong audience': 'TOKEN_WRONG_AUDIENCE',
    'wrong issuer': 'TOKEN_WRONG_ISSUER',
    expired: 'TOKEN_EXPIRED',
    'not yet valid': 'TOKEN_NOT_YET_VALID',
    'bad signature': 'TOKEN_BAD_SIGNATURE',
    oversized: 'TOKEN_TOO_LONG',
    'malformed JWT': 'TOKEN_MALFORMED',
    'malformed characters': 'TOKEN_MALFORMED',
    'token with a space': 'TOKEN_MALFORMED'
  }
  for (const [name, token] of forged) {
    // Make each one known upstream: only the local check can stop it.
    fake.jobs.set(token, { id: 1001, status: 'running', projectId: 10, userId: 7 })
    await t.test(name, async () => {
      const err = await rejectsWith(resolver.resolve(token), expected[name]!, token)
      assert.equal(identityAnswer(err.code, null).status, 401)
    })
  }
  assert.equal(fake.calls.job, 1, 'no forged token reached GitLab')
})

test('without a key, stale JWTs are still refused locally; signatures are left to GitLab', async (t) => {
  const fake = await fakeGitlab()
  const keys = await createTestKeys()
  const resolver = resolverFor(fake)
  t.after(async () => { await resolver.close(); await fake.close() })

  await rejectsWith(resolver.resolve(await signJobToken(keys, 1, { expiresIn: -1 })), 'TOKEN_EXPIRED')
  await rejectsWith(resolver.resolve(await signJobToken(keys, 1, { audience: 'elsewhere' })), 'TOKEN_WRONG_AUDIENCE')
  await rejectsWith(resolver.resolve(unsignedJobToken(plausibleClaims(1))), 'TOKEN_ALG_NOT_ALLOWED')
  assert.equal(fake.calls.job, 0)
  await rejectsWith(resolver.resolve(await signJobToken(await createTestKeys(), 1)), 'TOKEN_UNKNOWN')
  assert.equal(fake.calls.job, 1, 'an unverifiable signature is GitLab\'s to refuse')
})

test('a cached identity does not outlive its token', async (t) => {
  const fake = await fakeGitlab()
  const keys = await createTestKeys()
  let now = Date.now()
  const resolver = resolverFor(fake, { jwt: { key: { pem: keys.publicPem } }, cache: { tokenTtlMs: 3_600_000, clock: { now: () => now } } })
  t.after(async () => { await resolver.close(); await fake.close() })

  // Well inside the namespace answers' 60 s, so only the token bounds the entry: with 60 s, a
  // second passing between reading the clock and signing put exp past the namespace lifetime.
  const token = await signJobToken(keys, 1001, { expiresIn: 30 })
  fake.jobs.set(token, { id: 1001, status: 'running', projectId: 10, userId: 7 })
  const identity = await resolver.resolve(token)
  assert.ok(identity.expiresAt !== undefined)
  now = identity.expiresAt - 1
  assert.equal((await resolver.resolve(token)).jobId, 1001, 'cached until the token expires')
  now = identity.expiresAt + 1
  await rejectsWith(resolver.resolve(token), 'TOKEN_EXPIRED')
  assert.equal(fake.calls.job, 1)
})

test('options are checked at creation', () => {
  assert.throws(() => createIntrospectionResolver({ upstream: 'not a url', serviceToken: 'x' }), /upstream/)
  assert.throws(() => createIntrospectionResolver({ upstream: 'http://gitlab', serviceToken: '' }), /serviceToken/)
  assert.throws(() => createIntrospectionResolver({ upstream: 'http://gitlab', serviceToken: 'x', jwt: { key: { pem: 'nope' } } }), /PEM/)
})

test('introspection: a job being cancelled (after_script) is accepted, a finished one is not', async (t) => {
  const fake = await fakeGitlab()
  const resolver = resolverFor(fake)
  t.after(async () => { await resolver.close(); await fake.close() })
  const canceling = legacyJobToken()
  const canceled = legacyJobToken()
  fake.jobs.set(canceling, { id: 1005, status: 'canceling', projectId: 10, userId: 7 })
  fake.jobs.set(canceled, { id: 1006, status: 'canceled', projectId: 10, userId: 7 })
  assert.equal((await resolver.resolve(canceling)).jobId, 1005)
  await rejectsWith(resolver.resolve(FINISHED), 'TOKEN_JOB_NOT_RUNNING', FINISHED)
  await rejectsWith(resolver.resolve(canceled), 'TOKEN_JOB_NOT_RUNNING', canceled)
  assert.equal(fake.calls.job, 3)
})

test('JWT job tokens with an instance prefix are checked locally like unprefixed ones', async (t) => {
  const fake = await fakeGitlab()
  const keys = await createTestKeys('gitlab-job-token-key')
  const resolver = resolverFor(fake, { jwt: { key: { pem: keys.publicPem }, issuer: GITLAB_ISSUER } })
  t.after(async () => { await resolver.close(); await fake.close() })
  const valid = 'acme-' + await signJobToken(keys, 1001)
  fake.jobs.set(valid, { id: 1001, status: 'running', projectId: 10, userId: 7 })
  const identity = await resolver.resolve(valid)
  assert.equal(identity.jobId, 1001)
  assert.equal(typeof identity.expiresAt, 'number', 'the JWT inside was read')
  // A prefix that itself contains `-glcbt` is taken whole.
  const odd = 'my-glcbt-' + await signJobToken(keys, 1001)
  fake.jobs.set(odd, { id: 1001, status: 'running', projectId: 10, userId: 7 })
  assert.equal((await resolver.resolve(odd)).jobId, 1001)
  assert.equal(fake.calls.job, 2)
  const expired = 'acme-' + await signJobToken(keys, 1001, { expiresIn: -60 })
  fake.jobs.set(expired, { id: 1001, status: 'running', projectId: 10, userId: 7 })
  await rejectsWith(resolver.resolve(expired), 'TOKEN_EXPIRED', expired)
  const forged = 'acme-' + await signJobToken(await createTestKeys('gitlab-job-token-key'), 1001)
  fake.jobs.set(forged, { id: 1001, status: 'running', projectId: 10, userId: 7 })
  await rejectsWith(resolver.resolve(forged), 'TOKEN_BAD_SIGNATURE', forged)
  assert.equal(fake.calls.job, 2, 'no stale or forged prefixed token reached GitLab')
})

test('group parents that loop, or nest deeper than GitLab allows, fail the lookup (never an allow, never a hang)', async (t) => {
  const LOOP = legacyJobToken()
  const DEEP = legacyJobToken()
  // 30 and 31 name each other as parent; 100..122 is a chain of 23 groups (GitLab allows 20 levels).
  const deep = Array.from({ length: 23 }, (_, i) => ({ id: 100 + i, fullPath: Array.from({ length: i + 1 }, (_, k) => `g${k}`).join('/'), parentId: i === 0 ? null : 100 + i - 1 }))
  const fake = await startFakeGitlab({
    groups: [{ id: 30, fullPath: 'loop-a', parentId: 31 }, { id: 31, fullPath: 'loop-b', parentId: 30 }, ...deep],
    projects: [
      { id: 40, pathWithNamespace: 'loop-a/app', namespace: { id: 30, kind: 'group', fullPath: 'loop-a', parentId: 31 } },
      { id: 41, pathWithNamespace: `${deep[22]!.fullPath}/app`, namespace: { id: 122, kind: 'group', fullPath: deep[22]!.fullPath, parentId: 121 } }
    ],
    jobs: {
      [LOOP]: { id: 4001, status: 'running', projectId: 40, userId: 7 },
      [DEEP]: { id: 4002, status: 'running', projectId: 41, userId: 7 }
    }
  })
  const resolver = resolverFor(fake)
  t.after(async () => { await resolver.close(); await fake.close() })
  const loop = await rejectsWith(resolver.resolve(LOOP), 'IDENTITY_LOOKUP_FAILED', LOOP)
  assert.match(loop.message, /loop or nest too deep/)
  const tooDeep = await rejectsWith(resolver.resolve(DEEP), 'IDENTITY_LOOKUP_FAILED', DEEP)
  assert.match(tooDeep.message, /loop or nest too deep/)
})

test('a project or group answer for another id fails the lookup: the job is never put under another project\'s groups', async (t) => {
  const fake = await fakeGitlab()
  const resolver = resolverFor(fake)
  t.after(async () => { await resolver.close(); await fake.close() })
  // Asked for project 10, GitLab (or a cache before it) answers alice/tool, id 20.
  fake.projects.set(10, fake.projects.get(20)!)
  const project = await rejectsWith(resolver.resolve(RUNNING), 'IDENTITY_LOOKUP_FAILED', RUNNING)
  assert.match(project.message, /answered project 20/)

  const other = await fakeGitlab()
  const second = resolverFor(other)
  t.after(async () => { await second.close(); await other.close() })
  // Asked for group 2 (platform), the answer is group 1's (acme, no parent): the chain would end early.
  other.groups.set(2, other.groups.get(1)!)
  const group = await rejectsWith(second.resolve(RUNNING), 'IDENTITY_LOOKUP_FAILED', RUNNING)
  assert.match(group.message, /answered group 1/)
})
