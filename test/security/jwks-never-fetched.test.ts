// Finding: with GATE_JWT_KEY a JWKS URL, a gate that had never fetched the key set (started
// while GitLab's /oauth/discovery/keys failed, or could not be reached) asked the endpoint again
// for every request carrying a JWT job token: the cooldown after a failed fetch only applied
// once some keys had been fetched. Anyone could send such requests (a token with an RS256 header
// and any signature is enough: the signature is checked once the keys are there), so the gate
// sent the failing endpoint one fetch per request, at the sender's rate, and held each request
// for the fetch. A failed fetch is now followed by a cooldown whether or not there are keys to
// fall back on; meanwhile a token that needs the keys is answered 503, as before.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate } from '../helpers/gate.ts'
import { createTestKeys, signJobToken } from '../helpers/tokens.ts'

const RELEASES = '/api/v4/projects/100/releases'

test('a JWKS that could never be fetched is not asked again for every request', async t => {
  const gate = await startTestGate(t, { GATE_JWT_KEY: '{gitlab}/oauth/discovery/keys' })
  const keys = await createTestKeys('k1')
  gate.gitlab.jwks = { keys: [keys.publicJwk] }
  gate.gitlab.failWith.jwks = 503

  for (let i = 0; i < 6; i++) {
    const token = await signJobToken(keys, 900 + i)
    gate.gitlab.jobs.set(token, { id: 900 + i, status: 'running', projectId: 100, userId: 7 })
    const res = await fetch(gate.url + RELEASES, { headers: { 'job-token': token } })
    const body = await res.json() as Record<string, unknown>
    assert.equal(res.status, 503, JSON.stringify(body))
    assert.equal(body.code, 'IDENTITY_UPSTREAM_UNAVAILABLE')
  }
  assert.equal(gate.gitlab.calls.jwks, 1, 'one fetch, then no other for a cooldown')
  assert.equal(gate.gitlab.calls.job, 0, 'GitLab is not asked about a token whose signature cannot be checked')
})

test('with the key set fetched, JWT job tokens are checked and let through', async t => {
  const gate = await startTestGate(t, { GATE_JWT_KEY: '{gitlab}/oauth/discovery/keys' })
  const keys = await createTestKeys('k1')
  const forger = await createTestKeys('k1')
  gate.gitlab.jwks = { keys: [keys.publicJwk] }
  const token = await signJobToken(keys, 901)
  gate.gitlab.jobs.set(token, { id: 901, status: 'running', projectId: 100, userId: 7 })
  const ok = await fetch(gate.url + RELEASES, { headers: { 'job-token': token } })
  assert.equal(ok.status, 200, await ok.text())
  const forged = await signJobToken(forger, 902)
  gate.gitlab.jobs.set(forged, { id: 902, status: 'running', projectId: 100, userId: 7 })
  const bad = await fetch(gate.url + RELEASES, { headers: { 'job-token': forged } })
  assert.equal(bad.status, 401)
  assert.equal((await bad.json() as Record<string, unknown>).code, 'TOKEN_BAD_SIGNATURE')
  assert.equal(gate.gitlab.calls.jwks, 1)
})
