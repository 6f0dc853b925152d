// The local JWT resolver: GitLab CI ID tokens verified against a static key or a JWKS URL, claims
// mapped to the identity, no upstream call; key rotation, refetch cooldown and JWKS outages.
// Cooldowns and key ages run on a clock the tests move by hand (the resolver's cache clock).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createJobResolver, createLocalJwtResolver, type LocalJwtResolverOptions } from '../../src/identity/resolver.ts'
import { IdentityError } from '../../src/identity/types.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { createTestKeys, GITLAB_ISSUER, hs256WithPublicKey, signIdToken, type IdTokenClaims, type TestKeys } from '../helpers/tokens.ts'

const AUDIENCE = 'https://gate.example.com'
const CLAIMS: IdTokenClaims = {
  project_id: '10',
  project_path: 'acme/platform/app',
  namespace_id: '3',
  namespace_path: 'acme/platform',
  user_id: '7',
  job_id: '1001'
}

async function rejectsWith (work: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(work, (err: unknown) => {
    assert.ok(err instanceof IdentityError, String(err))
    assert.equal(err.code, code, err.message)
    return true
  })
}

function localResolver (keys: TestKeys, extra: Partial<LocalJwtResolverOptions> = {}): ReturnType<typeof createLocalJwtResolver> {
  return createLocalJwtResolver({ key: { pem: keys.publicPem }, issuer: GITLAB_ISSUER, audience: AUDIENCE, ...extra })
}

test('ID token claims map to the identity', async () => {
  const keys = await createTestKeys()
  const resolver = createJobResolver({ kind: 'jwt', key: { pem: keys.publicPem }, issuer: GITLAB_ISSUER, audience: AUDIENCE })
  const token = await signIdToken(keys, CLAIMS)
  const identity = await resolver.resolve(token)
  const exp = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number }
  assert.deepEqual(identity, { jobId: 1001, jobProjectId: 10, jobProjectPath: 'acme/platform/app', ancestorGroupIds: [3], userId: 7, expiresAt: exp.exp * 1000 })
})

test('claim names and the ancestors claim are configurable', async () => {
  const keys = await createTestKeys()
  const resolver = localResolver(keys, { claims: { projectId: 'pid', ancestors: 'group_ids' } })
  const token = await signIdToken(keys, { ...CLAIMS, pid: 99, group_ids: ['3', 2, '1'] })
  const identity = await resolver.resolve(token)
  assert.equal(identity.jobProjectId, 99)
  assert.deepEqual(identity.ancestorGroupIds, [3, 2, 1])
  await rejectsWith(resolver.resolve(await signIdToken(keys, CLAIMS)), 'TOKEN_CLAIMS_INVALID')
})

test('JWT checks: every forgery and stale token has its own code', async (t) => {
  const keys = await createTestKeys('ci-key')
  const other = await createTestKeys('ci-key')
  const resolver = localResolver(keys)
  const payload = { ...CLAIMS, iss: GITLAB_ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 600 }
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')
  const cases: Array<[string, string, string]> = [
    ['alg none', `${b64({ alg: 'none' })}.${b64(payload)}.`, 'TOKEN_ALG_NOT_ALLOWED'],
    ['HS256 with the public key as the secret', (await hs256WithPublicKey(keys, payload)).slice('glcbt-'.length), 'TOKEN_ALG_NOT_ALLOWED'],
    ['wrong audience', await signIdToken(keys, CLAIMS, { audience: 'https://vault.example.com' }), 'TOKEN_WRONG_AUDIENCE'],
    ['wrong issuer', await signIdToken(keys, CLAIMS, { issuer: 'https://gitlab.evil.com' }), 'TOKEN_WRONG_ISSUER'],
    ['expired', await signIdToken(keys, CLAIMS, { expiresIn: -30 }), 'TOKEN_EXPIRED'],
    ['not yet valid', await signIdToken(keys, CLAIMS, { notBefore: 300 }), 'TOKEN_NOT_YET_VALID'],
    ['bad signature', await signIdToken(other, CLAIMS), 'TOKEN_BAD_SIGNATURE'],
    ['oversized', await signIdToken(keys, { ...CLAIMS, padding: 'x'.repeat(9000) }), 'TOKEN_TOO_LONG'],
    ['missing claims', await signIdToken(keys, { ...CLAIMS, project_id: 'not-a-number' }), 'TOKEN_CLAIMS_INVALID'],
    ['not a JWT', 'opaque-token', 'TOKEN_MALFORMED']
  ]
  for (const [name, token, code] of cases) {
    await t.test(name, () => rejectsWith(resolver.resolve(token), code))
  }
  // The `glcbt-` prefix, with or without an instance prefix, is stripped before verification.
  assert.equal((await resolver.resolve('glcbt-' + await signIdToken(keys, CLAIMS))).jobId, 1001)
  assert.equal((await resolver.resolve('acme-glcbt-' + await signIdToken(keys, CLAIMS))).jobId, 1001)
})

test('a JWKS file is a key source', async (t) => {
  const keys = await createTestKeys('file-key')
  const dir = mkdtempSync(join(tmpdir(), 'jwks-'))
  t.after(() => { rmSync(dir, { recursive: true }) })
  const file = join(dir, 'jwks.json')
  writeFileSync(file, JSON.stringify({ keys: [keys.publicJwk] }))
  const resolver = localResolver(keys, { key: { jwksFile: file } })
  assert.equal((await resolver.resolve(await signIdToken(keys, CLAIMS))).jobId, 1001)
  assert.throws(() => localResolver(keys, { key: { jwksFile: join(dir, 'missing.json') } }), /JWKS file/)
})

test('JWKS rotation: a new kid is fetched, at most once per cooldown', async (t) => {
  const k1 = await createTestKeys('k1')
  const k2 = await createTestKeys('k2')
  const k3 = await createTestKeys('k3')
  const fake = await startFakeGitlab({ jwks: { keys: [k1.publicJwk] } })
  t.after(() => fake.close())
  const cooldownMs = 30_000
  const clock = { t: Date.now() }
  const resolver = localResolver(k1, { key: { jwksUrl: `${fake.url}/oauth/discovery/keys`, cooldownMs }, cache: { negativeTtlMs: 0, clock: { now: () => clock.t } } })

  assert.equal((await resolver.resolve(await signIdToken(k1, CLAIMS))).jobId, 1001)
  assert.equal(fake.calls.jwks, 1)

  // GitLab rotates: k2 published (k1 kept for tokens in flight), once the cooldown has passed.
  clock.t += cooldownMs
  fake.jwks = { keys: [k1.publicJwk, k2.publicJwk] }
  assert.equal((await resolver.resolve(await signIdToken(k2, { ...CLAIMS, job_id: '1002' }))).jobId, 1002)
  assert.equal(fake.calls.jwks, 2, 'the unknown kid triggered one refetch')

  // k3 appears right away: within the cooldown an unknown kid is answered without a fetch, 503
  // (the keys may have rotated since they were fetched), not a verdict on the token.
  fake.jwks = { keys: [k2.publicJwk, k3.publicJwk] }
  const k3Token = await signIdToken(k3, { ...CLAIMS, job_id: '1003' })
  await rejectsWith(resolver.resolve(k3Token), 'IDENTITY_UPSTREAM_UNAVAILABLE')
  await rejectsWith(resolver.resolve(await signIdToken(k3, { ...CLAIMS, job_id: '1004' })), 'IDENTITY_UPSTREAM_UNAVAILABLE')
  assert.equal(fake.calls.jwks, 2, 'no refetch during the cooldown')
  clock.t += cooldownMs - 1
  await rejectsWith(resolver.resolve(k3Token), 'IDENTITY_UPSTREAM_UNAVAILABLE')
  assert.equal(fake.calls.jwks, 2, 'no refetch until the last millisecond of the cooldown')

  clock.t += 1
  assert.equal((await resolver.resolve(k3Token)).jobId, 1003)
  assert.equal(fake.calls.jwks, 3)

  // A kid still unknown to keys fetched for this very token is a verdict.
  const stranger = await createTestKeys('k4')
  clock.t += cooldownMs
  await rejectsWith(resolver.resolve(await signIdToken(stranger, { ...CLAIMS, job_id: '1005' })), 'TOKEN_BAD_SIGNATURE')
  assert.equal(fake.calls.jwks, 4)
})

test('a key GitLab published just after a fetch: its tokens are accepted as soon as the cooldown allows a fetch', async (t) => {
  const k1 = await createTestKeys('k1')
  const k2 = await createTestKeys('k2')
  const fake = await startFakeGitlab({ jwks: { keys: [k1.publicJwk] } })
  t.after(() => fake.close())
  const cooldownMs = 30_000
  const clock = { t: Date.now() }
  // The default negative TTL (10 s): a refusal that is a verdict would be remembered past the cooldown.
  const resolver = localResolver(k1, { key: { jwksUrl: `${fake.url}/oauth/discovery/keys`, cooldownMs }, cache: { clock: { now: () => clock.t } } })
  assert.equal((await resolver.resolve(await signIdToken(k1, CLAIMS))).jobId, 1001)

  // GitLab rotates 5 s after the fetch; a new job's token comes 20 s after it.
  clock.t += 20_000
  fake.jwks = { keys: [k2.publicJwk] }
  const token = await signIdToken(k2, { ...CLAIMS, job_id: '1002' })
  await rejectsWith(resolver.resolve(token), 'IDENTITY_UPSTREAM_UNAVAILABLE')
  assert.equal(fake.calls.jwks, 1)
  clock.t += cooldownMs - 20_000
  assert.equal((await resolver.resolve(token)).jobId, 1002, 'not remembered as a bad token')
  assert.equal(fake.calls.jwks, 2)
})

test('JWKS outage: a failed refresh keeps the last good keys', async (t) => {
  const k1 = await createTestKeys('k1')
  const k2 = await createTestKeys('k2')
  const fake = await startFakeGitlab({ jwks: { keys: [k1.publicJwk] } })
  t.after(() => fake.close())
  const warnings: string[] = []
  const clock = { t: Date.now() }
  const resolver = localResolver(k1, {
    key: { jwksUrl: `${fake.url}/oauth/discovery/keys`, cacheMaxAgeMs: 600_000, cooldownMs: 30_000, timeoutMs: 300 },
    cache: { negativeTtlMs: 0, clock: { now: () => clock.t } },
    onWarning: m => warnings.push(m)
  })
  const first = await signIdToken(k1, CLAIMS)
  assert.equal((await resolver.resolve(first)).jobId, 1001)
  clock.t += 600_000 - 1
  assert.equal((await resolver.resolve(await signIdToken(k1, { ...CLAIMS, job_id: '1009' }))).jobId, 1009)
  assert.equal(fake.calls.jwks, 1, 'keys younger than cacheMaxAge are not refetched')

  fake.failWith.jwks = 503
  clock.t += 1 // keys are now stale: the next use refetches
  const second = await signIdToken(k1, { ...CLAIMS, job_id: '1002' })
  assert.equal((await resolver.resolve(second)).jobId, 1002, 'verified with the last good keys')
  assert.equal(fake.calls.jwks, 2, 'the refresh was attempted')
  assert.equal(warnings.length, 1)
  assert.ok(!warnings[0]!.includes(second), 'warnings never carry a token')

  // A kid nobody can vouch for while the JWKS is down: 503, not a verdict on the token.
  await rejectsWith(resolver.resolve(await signIdToken(k2, CLAIMS)), 'IDENTITY_UPSTREAM_UNAVAILABLE')

  // Inside the cooldown after the failure the endpoint is not asked again.
  clock.t += 30_000 - 1
  assert.equal((await resolver.resolve(await signIdToken(k1, { ...CLAIMS, job_id: '1004' }))).jobId, 1004)
  assert.equal(fake.calls.jwks, 2, 'no refetch during the cooldown after a failure')

  // Slow instead of down: same answer, bounded by the fetch timeout (a real timer, the
  // behaviour under test; the bound below, 10x that timeout, only detects a hang).
  delete fake.failWith.jwks
  fake.delayMs = 2000
  clock.t += 1
  const started = Date.now()
  assert.equal((await resolver.resolve(await signIdToken(k1, { ...CLAIMS, job_id: '1005' }))).jobId, 1005)
  assert.ok(Date.now() - started < 3000)
  assert.equal(fake.calls.jwks, 3, 'the refresh was attempted')
  assert.equal(warnings.length, 2)
})

test('JWKS never reachable: 503, and not cached as a bad token', async (t) => {
  const k1 = await createTestKeys('k1')
  const fake = await startFakeGitlab({ jwks: { keys: [k1.publicJwk] } })
  t.after(() => fake.close())
  fake.failWith.jwks = 500
  const resolver = localResolver(k1, { key: { jwksUrl: `${fake.url}/oauth/discovery/keys`, cooldownMs: 0 }, cache: { negativeTtlMs: 60_000 } })
  const token = await signIdToken(k1, CLAIMS)
  await rejectsWith(resolver.resolve(token), 'IDENTITY_UPSTREAM_UNAVAILABLE')
  delete fake.failWith.jwks
  assert.equal((await resolver.resolve(token)).jobId, 1001)
})

test('options are checked at creation', async () => {
  const keys = await createTestKeys()
  assert.throws(() => createLocalJwtResolver({ key: { pem: keys.publicPem }, issuer: '', audience: AUDIENCE }), /issuer/)
  assert.throws(() => createLocalJwtResolver({ key: { pem: keys.publicPem }, issuer: GITLAB_ISSUER, audience: [] }), /audience/)
  assert.throws(() => createLocalJwtResolver({ key: { jwksUrl: 'not a url' }, issuer: GITLAB_ISSUER, audience: AUDIENCE }), /JWKS URL/)
})
