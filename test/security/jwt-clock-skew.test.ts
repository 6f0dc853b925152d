// Finding: GitLab signs a job token JWT with `nbf` 5 seconds before it issues it
// (lib/json_web_token/token.rb), on GitLab's clock. The gate checked `nbf` against its own clock
// with no tolerance, before asking GitLab, with or without GATE_JWT_KEY: on a gate whose clock
// ran more than 5 seconds behind GitLab's, every fresh job token was refused (401
// TOKEN_NOT_YET_VALID) although GitLab accepted it, and the refusal was then remembered for the
// negative cache's 10 s, past the moment the token became valid on the gate's clock too. The
// introspection resolver asks GitLab, which checks `nbf` itself, so it now allows 60 s of skew
// on `nbf`; `exp` is checked as before.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate } from '../helpers/gate.ts'
import { createTestKeys, signJobToken } from '../helpers/tokens.ts'

const RELEASES = '/api/v4/projects/100/releases'

for (const keyed of [false, true]) {
  test(`a job token issued by a GitLab whose clock is ahead of the gate's is accepted (${keyed ? 'with' : 'without'} GATE_JWT_KEY)`, async t => {
    const gate = await startTestGate(t, keyed ? { GATE_JWT_KEY: '{gitlab}/oauth/discovery/keys' } : {})
    const keys = await createTestKeys('k1')
    gate.gitlab.jwks = { keys: [keys.publicJwk] }

    // GitLab's clock 25 s ahead: nbf is 20 s in the gate's future.
    const fresh = await signJobToken(keys, 901, { notBefore: 20 })
    gate.gitlab.jobs.set(fresh, { id: 901, status: 'running', projectId: 100, userId: 7 })
    const res = await fetch(gate.url + RELEASES, { headers: { 'job-token': fresh } })
    assert.equal(res.status, 200, await res.text())
    assert.equal(gate.gitlab.calls.job, 1, 'GitLab was asked, and said the job runs')

    // Still refused locally, without asking GitLab: nbf an hour ahead, or exp passed.
    gate.gitlab.resetCalls()
    for (const [token, code] of [[await signJobToken(keys, 902, { notBefore: 3600, expiresIn: 7200 }), 'TOKEN_NOT_YET_VALID'], [await signJobToken(keys, 903, { expiresIn: -1 }), 'TOKEN_EXPIRED']] as const) {
      gate.gitlab.jobs.set(token, { id: 902, status: 'running', projectId: 100, userId: 7 })
      const refused = await fetch(gate.url + RELEASES, { headers: { 'job-token': token } })
      assert.equal(refused.status, 401)
      assert.equal((await refused.json() as Record<string, unknown>).code, code)
    }
    assert.equal(gate.gitlab.calls.job, 0)
  })
}
