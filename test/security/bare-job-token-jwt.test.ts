// A job token JWT without its `glcbt-`: GitLab's first JWT job tokens
// (lib/ci/job_token/jwt/decode.rb, Ci::JobToken::Jwt::Decode) strip the prefix with
// `delete_prefix`, which leaves a token that lacks it as it is, and decode the rest; and
// `find_user_from_job_bearer_token` (lib/gitlab/auth/auth_finders.rb) hands any Bearer to
// Ci::AuthJobFinder. So the JWT alone, the job's CI_JOB_TOKEN less its first six characters,
// authenticated the job wherever GitLab reads a job token. The gate recognised a job token
// only by `glcbt-` outside the places that always hold one: the bare JWT as Bearer (or
// `access_token=`, `token=`, X-NuGet-ApiKey, Basic under another user) was another credential,
// forwarded unchecked, and the job of other/tools read acme/lib's packages, whose allowlist does
// not name it; at the configuration API, which refuses job tokens, it passed as the job's user.
// A JWT whose subject is a CI build is a job token now, wherever it appears.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate } from '../helpers/gate.ts'
import { createTestKeys, signIdToken, signJobToken } from '../helpers/tokens.ts'

// acme/lib (200) does not list other/tools (300).
const PACKAGES = '/api/v4/projects/200/packages'

const basic = (user: string, password: string): string => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64')

test('a job token JWT sent without glcbt- is the job token GitLab reads, held to the job\'s scope', async t => {
  const keys = await createTestKeys()
  const gate = await startTestGate(t)
  // The token of job 3 (other/tools), as a GitLab whose decode strips `glcbt-` only where it is.
  const prefixed = await signJobToken(keys, 3)
  const bare = prefixed.slice('glcbt-'.length)
  gate.gitlab.jobs.set(bare, { id: 3, status: 'running', projectId: 300, userId: 8 })

  const ways: Array<{ name: string, path?: string, headers?: Record<string, string> }> = [
    { name: 'Bearer', headers: { authorization: `Bearer ${bare}` } },
    { name: 'access_token=', path: `${PACKAGES}?access_token=${bare}` },
    { name: 'bearer_token=', path: `${PACKAGES}?bearer_token=${bare}` },
    { name: 'token=', path: `${PACKAGES}?token=${bare}` },
    { name: 'Basic under another user', headers: { authorization: basic('someone', bare) } }
  ]
  for (const way of ways) {
    const res = await fetch(gate.url + (way.path ?? PACKAGES), { headers: way.headers ?? {} })
    const body = await res.json() as Record<string, unknown>
    assert.equal(res.status, 403, `${way.name}: ${JSON.stringify(body)}`)
    assert.equal(body.code, 'NOT_ALLOWLISTED', way.name)
  }
  assert.equal(gate.seen.length, 0, 'nothing forwarded')

  // Spellings GitLab's JWT library reads as the same token (ruby-jwt: Ruby's split drops trailing
  // empty parts, Base64.decode64 skips characters outside the alphabet) are job tokens too,
  // refused as malformed rather than forwarded as another credential.
  for (const spelling of [`${bare}.`, `${bare}!`]) {
    const res = await fetch(gate.url + PACKAGES, { headers: { authorization: `Bearer ${spelling}` } })
    const body = await res.json() as Record<string, unknown>
    assert.equal(res.status, 401, JSON.stringify(body))
    assert.equal(body.code, 'TOKEN_MALFORMED')
  }
  assert.equal(gate.seen.length, 0, 'nothing forwarded')

  // A GitLab that takes only `glcbt-` tokens refuses the bare JWT, and so does the gate.
  gate.gitlab.jobs.delete(bare)
  const refused = await signJobToken(keys, 4)
  const res = await fetch(gate.url + PACKAGES, { headers: { authorization: `Bearer ${refused.slice('glcbt-'.length)}` } })
  assert.equal(res.status, 401, await res.text())
  assert.equal(gate.seen.length, 0)
})

test('other JWTs in Bearer are still other credentials', async t => {
  const keys = await createTestKeys()
  const gate = await startTestGate(t)
  // A CI ID token names a project path as its subject, not a build: not a job token.
  const idToken = await signIdToken(keys, { project_id: '300', project_path: 'other/tools', namespace_id: '20', namespace_path: 'other', user_id: '8', job_id: '3' })
  const res = await fetch(gate.url + PACKAGES, { headers: { authorization: `Bearer ${idToken}` } })
  assert.equal(res.status, 200, await res.text())
  assert.equal(gate.seen.length, 1, 'forwarded as another credential, for GitLab to decide')
})

test('the configuration API refuses a job token JWT sent without glcbt-, as it refuses a prefixed one', async t => {
  const keys = await createTestKeys()
  const bare = (await signJobToken(keys, 3)).slice('glcbt-'.length)
  // The job's user is a Maintainer of acme/lib; GitLab reading the bare JWT as the job answers as that user.
  const gate = await startTestGate(t, { GATE_ADMIN_TOKEN: 'gate-operator-secret-token' }, {
    users: { [bare]: { id: 8, username: 'tom', access: { 200: 40 } } }
  })
  const ways: Array<Record<string, string>> = [{ authorization: `Bearer ${bare}` }, { 'private-token': bare }]
  for (const headers of ways) {
    const res = await fetch(gate.url + '/api/v4/projects/200/job_token_permissions', { headers })
    const body = await res.json() as Record<string, unknown>
    assert.equal(res.status, 403, JSON.stringify(body))
    assert.equal(body.code, 'ADMIN_JOB_TOKEN_REFUSED')
  }
})
