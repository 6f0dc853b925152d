// Forward-auth let a request with a body the gate cannot see through when it also carried a
// visible credential that is not a job token, on the belief that GitLab ranks a PAT or OAuth
// token before any job token. It does not rank the header before the body: GitLab reads the
// `access_token` parameter, body included, before anything else (Doorkeeper's
// `from_access_token_param`) and authenticates a job token there on every route that takes job
// tokens (find_user_from_job_bearer_token), without reading PRIVATE-TOKEN or Bearer at all; a
// `private_token=glcbt-...` makes it skip the PAT lookup; and a deploy token, `token=` or Basic
// that finds nothing falls through to the body's `job_token=`. So `PRIVATE-TOKEN: x` (any
// value) beside `access_token=<job token>` in the body reached GitLab with the job token
// undecided. Now a body the gate cannot see is refused on a job-token route whatever is visible.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { needsNginx, startShippedNginx } from '../helpers/nginx.ts'

// Project 300 (other/tools) lists nobody: the job of project 100 may create no deployment there.
const DEPLOYMENTS = '/api/v4/projects/300/deployments'
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const BODY = `access_token=${TOKENS.app}&environment=production&sha=abc&ref=main&tag=false&status=success`

/** Credentials a client can show beside the body; none of them outranks the body's access_token. */
const VISIBLE: Record<string, { readonly headers: Record<string, string>, readonly query?: string }> = {
  'PRIVATE-TOKEN': { headers: { 'private-token': 'glpat-anything' } },
  'Authorization: Bearer': { headers: { authorization: 'Bearer glpat-anything' } },
  'Deploy-Token': { headers: { 'deploy-token': 'gldt-anything' } },
  'Basic, another user': { headers: { authorization: `Basic ${Buffer.from('someone:secret').toString('base64')}` } },
  'private_token=': { headers: {}, query: 'private_token=glpat-anything' },
  'token=': { headers: {}, query: 'token=anything' }
}

test('behind the shipped nginx: a visible credential does not let a body with a job token through', { skip: needsNginx }, async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' })
  const { base } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: g.gate.authAddress()!.port, api: g.gate.address().port })
  for (const [name, visible] of Object.entries(VISIBLE)) {
    const path = visible.query === undefined ? DEPLOYMENTS : `${DEPLOYMENTS}?${visible.query}`
    const answer = await send(base, 'POST', path, { ...FORM, ...visible.headers }, BODY)
    assert.equal(answer.status, 403, `${name}: ${answer.text}`)
  }
  assert.equal(g.seen.filter(s => s.url.startsWith(DEPLOYMENTS)).length, 0, 'nothing reached GitLab')
  assert.equal(g.logs.filter(l => l.reason === 'BODY_NOT_VISIBLE').length, Object.keys(VISIBLE).length)
})

test('the decision endpoint: a hidden form body is refused whatever credential is visible', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  for (const [name, visible] of Object.entries(VISIBLE)) {
    const uri = visible.query === undefined ? DEPLOYMENTS : `${DEPLOYMENTS}?${visible.query}`
    const answer = await send(auth, 'GET', '/', { 'x-original-method': 'POST', 'x-original-uri': uri, 'x-original-content-length': String(BODY.length), ...FORM, ...visible.headers })
    assert.equal(answer.status, 403, `${name}: ${answer.text}`)
    assert.equal(answer.json().code, 'BODY_NOT_VISIBLE', name)
  }
  // Nothing to hide: a request without a body, and a GET, pass with the same credentials.
  assert.equal((await send(auth, 'GET', '/', { 'x-original-method': 'POST', 'x-original-uri': DEPLOYMENTS, 'x-original-content-length': '0', 'private-token': 'glpat-user' })).status, 403, 'a length of 0 is not believed by default')
  const declared = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' })
  const declaredAuth = `http://127.0.0.1:${declared.gate.authAddress()!.port}`
  assert.equal((await send(declaredAuth, 'GET', '/', { 'x-original-method': 'POST', 'x-original-uri': DEPLOYMENTS, 'x-original-content-length': '0', 'private-token': 'glpat-user' })).status, 200)
  assert.equal((await send(auth, 'GET', '/', { 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/200/packages', 'private-token': 'glpat-user' })).status, 200)
})
