// Finding: with GATE_JWT_KEY a JWKS URL, the key set is fetched again for a token whose `kid` it
// does not know at most once per cooldown (30 s). A token signed with a key GitLab published
// within the cooldown after the last fetch (a rotation just after the gate fetched the keys)
// was answered 401 TOKEN_BAD_SIGNATURE, a verdict on the token remembered for the negative
// cache's 10 s, so a valid job token was refused past the end of the cooldown too. The keys
// are not known to be complete then: the answer is now 503 IDENTITY_UPSTREAM_UNAVAILABLE
// (Retry-After), never remembered, and the token is accepted once the cooldown allows a fetch
// (test/identity/jwt-resolver.test.ts moves the clock). A kid still unknown to keys fetched for
// the token itself stays a 401, and the endpoint is still asked at most once per cooldown.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate } from '../helpers/gate.ts'
import { createTestKeys, GITLAB_ISSUER, signIdToken, signJobToken, type IdTokenClaims } from '../helpers/tokens.ts'

const RELEASES = '/api/v4/projects/100/releases'
const AUDIENCE = 'https://gate.example.com'
const CLAIMS: IdTokenClaims = { project_id: '100', project_path: 'acme/platform/app', namespace_id: '11', namespace_path: 'acme/platform', user_id: '7', job_id: '901' }

test('introspection: a job token signed with a key published just after the last fetch is not refused as forged', async t => {
  const gate = await startTestGate(t, { GATE_JWT_KEY: '{gitlab}/oauth/discovery/keys' })
  const k1 = await createTestKeys('k1')
  const k2 = await createTestKeys('k2')
  gate.gitlab.jwks = { keys: [k1.publicJwk] }
  const before = await signJobToken(k1, 901)
  gate.gitlab.jobs.set(before, { id: 901, status: 'running', projectId: 100, userId: 7 })
  assert.equal((await fetch(gate.url + RELEASES, { headers: { 'job-token': before } })).status, 200)

  // GitLab rotates its signing key; a new job's token comes within the cooldown.
  gate.gitlab.jwks = { keys: [k2.publicJwk] }
  const after = await signJobToken(k2, 902)
  gate.gitlab.jobs.set(after, { id: 902, status: 'running', projectId: 100, userId: 7 })
  for (let i = 0; i < 3; i++) {
    const res = await fetch(gate.url + RELEASES, { headers: { 'job-token': after } })
    const body = await res.json() as Record<string, unknown>
    assert.equal(res.status, 503, JSON.stringify(body))
    assert.equal(body.code, 'IDENTITY_UPSTREAM_UNAVAILABLE')
    assert.ok(res.headers.get('retry-after') !== null)
  }
  assert.equal(gate.gitlab.calls.jwks, 1, 'not fetched again within the cooldown')
  assert.equal(gate.gitlab.calls.job, 1, 'GitLab is not asked about a token whose signature cannot be checked')
  assert.equal(gate.seen.length, 1)
})

test('local JWT resolver: the same, for an ID token', async t => {
  const gate = await startTestGate(t, { GATE_IDENTITY_RESOLVER: 'jwt', GATE_JWT_KEY: '{gitlab}/oauth/discovery/keys', GATE_JWT_ISSUER: GITLAB_ISSUER, GATE_JWT_AUDIENCE: AUDIENCE })
  const k1 = await createTestKeys('k1')
  const k2 = await createTestKeys('k2')
  gate.gitlab.jwks = { keys: [k1.publicJwk] }
  assert.equal((await fetch(gate.url + RELEASES, { headers: { 'job-token': await signIdToken(k1, CLAIMS) } })).status, 200)

  gate.gitlab.jwks = { keys: [k2.publicJwk] }
  const res = await fetch(gate.url + RELEASES, { headers: { 'job-token': await signIdToken(k2, { ...CLAIMS, job_id: '902' }) } })
  const body = await res.json() as Record<string, unknown>
  assert.equal(res.status, 503, JSON.stringify(body))
  assert.equal(body.code, 'IDENTITY_UPSTREAM_UNAVAILABLE')
  assert.equal(gate.gitlab.calls.jwks, 1)
  assert.equal(gate.seen.length, 1)
})
