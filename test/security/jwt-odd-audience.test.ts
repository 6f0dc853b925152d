// Finding: without GATE_JWT_KEY the gate still checks a JWT job token's exp, nbf and aud before
// asking GitLab, but read `aud` as a string or an array only: a token whose `aud` was an object
// or a number (anyone can write one, no signature is needed for that check) threw a TypeError,
// answered 502 IDENTITY_LOOKUP_FAILED, the code of a GitLab lookup that went wrong, and was
// counted as one, at the sender's rate. Such an `aud` is now what it is: the wrong audience, 401.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate } from '../helpers/gate.ts'

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
const now = (): number => Math.floor(Date.now() / 1000)

function tokenWith (claims: Record<string, unknown>): string {
  return `glcbt-${b64({ alg: 'RS256', typ: 'JWT', kid: 'k' })}.${b64({ sub: 'gid://gitlab/Ci::Build/1', iat: now(), nbf: now() - 5, exp: now() + 600, ...claims })}.c2ln`
}

test('a JWT job token whose aud is neither a string nor an array is the wrong audience, not a lookup failure', async t => {
  const gate = await startTestGate(t)
  for (const aud of [{ aud: 'gitlab-authz-token' }, 42, true, { length: 1, 0: 'gitlab-authz-token' }]) {
    const res = await fetch(`${gate.url}/api/v4/projects/100/releases`, { headers: { 'job-token': tokenWith({ aud }) } })
    const body = await res.json() as Record<string, unknown>
    assert.equal(res.status, 401, `aud ${JSON.stringify(aud)}: ${JSON.stringify(body)}`)
    assert.equal(body.code, 'TOKEN_WRONG_AUDIENCE')
  }
  // Still read as before: a string, or an array holding it.
  for (const aud of ['gitlab-authz-token', ['other', 'gitlab-authz-token']]) {
    const res = await fetch(`${gate.url}/api/v4/projects/100/releases`, { headers: { 'job-token': tokenWith({ aud }) } })
    assert.equal(res.status, 401)
    assert.equal((await res.json() as Record<string, unknown>).code, 'TOKEN_UNKNOWN', 'GitLab is asked, and knows no such token')
  }
  assert.equal(gate.gitlab.calls.job, 2, 'only the tokens with a readable audience reached GitLab')
})
