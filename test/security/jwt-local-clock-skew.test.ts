// Finding: the local JWT resolver (GATE_IDENTITY_RESOLVER=jwt) checked `nbf` against the gate's
// clock with no tolerance. GitLab writes an ID token's `nbf` 5 seconds before it issues it
// (lib/gitlab/ci/jwt.rb, NOT_BEFORE_TIME), on GitLab's clock: on a gate whose clock ran more than
// 5 seconds behind GitLab's, every fresh token was refused (401 TOKEN_NOT_YET_VALID), and the
// refusal was remembered for the negative cache's 10 s. The introspection resolver already
// allowed 60 s of skew on `nbf`; the local one now does too. `exp` is checked as before.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate } from '../helpers/gate.ts'
import { createTestKeys, GITLAB_ISSUER, signIdToken, type IdTokenClaims } from '../helpers/tokens.ts'

const AUDIENCE = 'https://gate.example.com'
const RELEASES = '/api/v4/projects/100/releases'
const CLAIMS: IdTokenClaims = { project_id: '100', project_path: 'acme/platform/app', namespace_id: '11', namespace_path: 'acme/platform', user_id: '7', job_id: '901' }

test('an ID token issued by a GitLab whose clock is ahead of the gate\'s is accepted by the local JWT resolver', async t => {
  const gate = await startTestGate(t, { GATE_IDENTITY_RESOLVER: 'jwt', GATE_JWT_KEY: '{gitlab}/oauth/discovery/keys', GATE_JWT_ISSUER: GITLAB_ISSUER, GATE_JWT_AUDIENCE: AUDIENCE })
  const keys = await createTestKeys('k1')
  gate.gitlab.jwks = { keys: [keys.publicJwk] }

  // GitLab's clock 25 s ahead: nbf is 20 s in the gate's future.
  const fresh = await signIdToken(keys, CLAIMS, { notBefore: 20 })
  const res = await fetch(gate.url + RELEASES, { headers: { 'job-token': fresh } })
  assert.equal(res.status, 200, await res.text())
  assert.equal(gate.seen.length, 1)

  // Still refused: nbf an hour ahead, or exp passed.
  for (const [token, code] of [[await signIdToken(keys, CLAIMS, { notBefore: 3600, expiresIn: 7200 }), 'TOKEN_NOT_YET_VALID'], [await signIdToken(keys, CLAIMS, { expiresIn: -1 }), 'TOKEN_EXPIRED']] as const) {
    const refused = await fetch(gate.url + RELEASES, { headers: { 'job-token': token } })
    assert.equal(refused.status, 401)
    assert.equal((await refused.json() as Record<string, unknown>).code, code)
  }
  assert.equal(gate.seen.length, 1, 'nothing refused was forwarded')
})
