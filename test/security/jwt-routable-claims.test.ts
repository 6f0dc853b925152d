// Newer GitLab signs the job's project and group into job token JWTs (`p`, `g`, base 36). Once
// the signature is verified, `p` is checked against the job GitLab describes; `g` is not read: it
// names the group the project was in when the job started, and after a transfer GitLab decides
// on the groups the project is in now, which the project lookup (cached
// GATE_NAMESPACE_CACHE_TTL_MS) tells. The claims of a token whose signature was not verified are
// never read.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { SignJWT, type JWTPayload } from 'jose'
import { createIntrospectionResolver, routableProject } from '../../src/identity/resolver.ts'
import { IdentityError, type ClosableJobResolver } from '../../src/identity/types.ts'
import { groupChain, startFakeGitlab, type FakeGitlab } from '../helpers/fake-gitlab.ts'
import { createTestKeys, GITLAB_ISSUER, JOB_TOKEN_AUDIENCE, type TestKeys } from '../helpers/tokens.ts'

const b36 = (n: number): string => n.toString(36)

/** A job token JWT as newer GitLab signs it, with routable claims. */
async function signRoutable (keys: TestKeys, jobId: number, claims: JWTPayload): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const jwt = await new SignJWT({ sub: `gid://gitlab/Ci::Build/${jobId}`, version: '0.1.0', o: '1', u: b36(7), ...claims })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: keys.kid })
    .setIssuer(GITLAB_ISSUER).setAudience(JOB_TOKEN_AUDIENCE)
    .setIssuedAt().setNotBefore(now).setExpirationTime(now + 3600).setJti(randomBytes(8).toString('hex'))
    .sign(keys.privateKey)
  return 'glcbt-' + jwt
}

async function fakeGitlab (): Promise<FakeGitlab> {
  return await startFakeGitlab({
    groups: groupChain([1, 'acme'], [2, 'platform'], [3, 'ci']),
    projects: [
      { id: 1234, pathWithNamespace: 'acme/platform/ci/app', namespace: { id: 3, kind: 'group', fullPath: 'acme/platform/ci', parentId: 2 } },
      { id: 20, pathWithNamespace: 'alice/tool', namespace: { id: 50, kind: 'user', fullPath: 'alice', parentId: null } }
    ]
  })
}

function resolverFor (fake: FakeGitlab, keys: TestKeys | null): ClosableJobResolver {
  return createIntrospectionResolver({
    upstream: fake.url, serviceToken: fake.serviceToken, timeoutMs: 1000,
    ...(keys === null ? {} : { jwt: { key: { pem: keys.publicPem }, issuer: GITLAB_ISSUER } })
  })
}

async function rejectsWith (work: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(work, (err: unknown) => err instanceof IdentityError && err.code === code)
}

test('routableProject reads p in base 36 and nothing else', () => {
  assert.equal(routableProject({ p: b36(1234), g: b36(3) }), 1234)
  assert.equal(routableProject({ p: b36(20) }), 20)
  for (const bad of [{}, { p: 1234 }, { p: '' }, { p: '0' }, { p: 'Z1' }, { p: '-1' }, { p: 'zzzzzzzzzzzz' }]) {
    assert.equal(routableProject(bad), null, JSON.stringify(bad))
  }
})

test('a signed JWT with p and g: the groups are the ones GitLab has the project in now, not g; the job status still checked', async (t) => {
  const fake = await fakeGitlab()
  const keys = await createTestKeys()
  // The caches' clock, moved by hand; it also checks the tokens' nbf and exp, so it runs on real time.
  let ahead = 0
  const resolver = createIntrospectionResolver({
    upstream: fake.url, serviceToken: fake.serviceToken, timeoutMs: 1000,
    jwt: { key: { pem: keys.publicPem }, issuer: GITLAB_ISSUER },
    cache: { clock: { now: () => Date.now() + ahead } }
  })
  t.after(async () => { await resolver.close(); await fake.close() })

  const token = await signRoutable(keys, 1001, { p: b36(1234), g: b36(3) })
  fake.jobs.set(token, { id: 1001, status: 'running', projectId: 1234, userId: 7 })
  const identity = await resolver.resolve(token)
  assert.equal(identity.jobId, 1001)
  assert.equal(identity.jobProjectId, 1234)
  assert.equal(identity.jobProjectPath, 'acme/platform/ci/app')
  assert.deepEqual(identity.ancestorGroupIds, [3, 2, 1])
  assert.equal(fake.calls.job, 1, 'the job status check stays')
  assert.equal(fake.calls.project, 1)

  // A second job of the same project costs no namespace call.
  const second = await signRoutable(keys, 1002, { p: b36(1234), g: b36(3) })
  fake.jobs.set(second, { id: 1002, status: 'running', projectId: 1234, userId: 7 })
  assert.deepEqual((await resolver.resolve(second)).ancestorGroupIds, [3, 2, 1])
  assert.equal(fake.calls.project, 1)

  // The project moves to the user namespace alice while the job runs; its token still says g=3.
  const app = fake.projects.get(1234)!
  fake.projects.set(1234, { ...app, pathWithNamespace: 'alice/app', namespace: { id: 50, kind: 'user', fullPath: 'alice', parentId: null } })
  ahead += 61_000
  const moved = await resolver.resolve(token)
  assert.deepEqual(moved.ancestorGroupIds, [], 'the groups GitLab has the project in now')
  assert.equal(moved.jobProjectPath, 'alice/app')

  // The job status check stays: a finished job's signed token is refused.
  const finished = await signRoutable(keys, 1004, { p: b36(1234), g: b36(3) })
  fake.jobs.set(finished, { id: 1004, status: 'success', projectId: 1234, userId: 7 })
  await rejectsWith(resolver.resolve(finished), 'TOKEN_JOB_NOT_RUNNING')
})

test('a signed p that GitLab contradicts is refused, not trusted', async (t) => {
  const fake = await fakeGitlab()
  const keys = await createTestKeys()
  const resolver = resolverFor(fake, keys)
  t.after(async () => { await resolver.close(); await fake.close() })
  const token = await signRoutable(keys, 1001, { p: b36(20), g: b36(3) })
  fake.jobs.set(token, { id: 1001, status: 'running', projectId: 1234, userId: 7 })
  await rejectsWith(resolver.resolve(token), 'TOKEN_CLAIMS_INVALID')
})

test('claims of a JWT whose signature was not verified are never used', async (t) => {
  const fake = await fakeGitlab()
  const keys = await createTestKeys('k')
  const forger = await createTestKeys('k') // same kid, another key
  const verifying = resolverFor(fake, keys)
  const keyless = resolverFor(fake, null)
  t.after(async () => { await verifying.close(); await keyless.close(); await fake.close() })

  // A bad signature is refused before GitLab is asked anything.
  const forged = await signRoutable(forger, 1001, { p: b36(1234), g: b36(3) })
  fake.jobs.set(forged, { id: 1001, status: 'running', projectId: 1234, userId: 7 })
  await rejectsWith(verifying.resolve(forged), 'TOKEN_BAD_SIGNATURE')
  assert.equal(fake.calls.job, 0)

  // Without a key nothing is verified: the project and its groups come from GitLab, whatever p
  // and g claim (here a project and group the job is not in).
  const lying = await signRoutable(forger, 1002, { p: b36(20), g: b36(1) })
  fake.jobs.set(lying, { id: 1002, status: 'running', projectId: 1234, userId: 7 })
  const identity = await keyless.resolve(lying)
  assert.equal(identity.jobProjectId, 1234)
  assert.equal(identity.jobProjectPath, 'acme/platform/ci/app')
  assert.deepEqual(identity.ancestorGroupIds, [3, 2, 1])
  assert.equal(fake.calls.project, 1, 'looked up, not read from the claims')
})

/** A gate on the fake GitLab, resolving a signed job token of project 1234 (group 3) that carries p and g. */
async function gateWithClaims (t: TestContext): Promise<{ url: string, token: string, fake: FakeGitlab, logs: Array<Record<string, unknown>> }> {
  const { createGate } = await import('../../src/gate/server.ts')
  const { loadConfig } = await import('../../src/config.ts')
  const { createMemoryStore } = await import('../../src/grants/memory-store.ts')
  const { pino } = await import('pino')
  const fake = await startFakeGitlab({
    groups: groupChain([1, 'acme'], [2, 'platform'], [3, 'ci']),
    projects: [
      { id: 1234, pathWithNamespace: 'acme/platform/ci/app', namespace: { id: 3, kind: 'group', fullPath: 'acme/platform/ci', parentId: 2 } },
      { id: 77, pathWithNamespace: 'acme/vault', namespace: { id: 1, kind: 'group', fullPath: 'acme', parentId: null } }
    ],
    fallback: (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('[]') }
  })
  t.after(() => fake.close())
  const keys = await createTestKeys()
  const token = await signRoutable(keys, 1001, { p: b36(1234), g: b36(3) })
  fake.jobs.set(token, { id: 1001, status: 'running', projectId: 1234, userId: 7 })
  const config = loadConfig({ GATE_UPSTREAM_URL: fake.url, GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0', GATE_SERVICE_TOKEN: fake.serviceToken })
  const resolver = createIntrospectionResolver({ upstream: fake.url, serviceToken: fake.serviceToken, jwt: { key: { pem: keys.publicPem }, issuer: GITLAB_ISSUER } })
  const logs: Array<Record<string, unknown>> = []
  const gate = createGate(config, { store: await createMemoryStore(), resolver, logger: pino({ level: 'info' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>) } }) })
  await gate.listen()
  t.after(() => gate.close(0))
  fake.resetCalls()
  return { url: `http://127.0.0.1:${gate.address().port}`, token, fake, logs }
}

test('through the gate: self access by id costs only the identity\'s project lookup; by path, the path is resolved to the id', async (t) => {
  const { url, token, fake, logs } = await gateWithClaims(t)
  const byId = await fetch(`${url}/api/v4/projects/1234/packages`, { headers: { 'job-token': token } })
  assert.equal(byId.status, 200, await byId.text())
  assert.equal(logs.filter(l => l.msg === 'decision').at(-1)?.reason, 'SELF_ACCESS')
  assert.equal(fake.calls.project, 1, 'the identity\'s project lookup, none for the decision')
  assert.equal(fake.calls.job, 1)

  const byPath = await fetch(`${url}/api/v4/projects/acme%2Fplatform%2Fci%2Fapp/packages`, { headers: { 'job-token': token } })
  assert.equal(byPath.status, 200, await byPath.text())
  assert.equal(logs.filter(l => l.msg === 'decision').at(-1)?.reason, 'SELF_ACCESS', 'the path the store does not know is found in GitLab')
})

test('through the gate: a deny names the job project by its path, as GitLab does', async (t) => {
  const { url, token } = await gateWithClaims(t)
  const denied = await fetch(`${url}/api/v4/projects/77/packages`, { headers: { 'job-token': token } })
  assert.equal(denied.status, 403)
  const body = await denied.json() as { code: string, message: string }
  assert.equal(body.code, 'UNKNOWN_PROJECT', 'a project the store does not know: an empty allowlist')
  assert.equal(body.message, '403 Forbidden - Authentication by CI/CD job token not allowed from app to vault.', 'the job project by its short path, not "project #1234"')
})
