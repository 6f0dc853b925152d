// Regression: Envoy's ext_authz with `with_request_body.pack_as_bytes: true` puts the client's body
// in the check's `raw_body`, which its HTTP client never sends (ext_authz_http_impl.cc writes
// `body` only): an HTTP authorization service gets `Content-Length: 0` and no body, with
// `x-envoy-auth-partial-body: false`, the mark Envoy sets on every check whose client request it
// buffered a body of. Under GATE_FORWARD_AUTH_BODIES=sent a check without a body was taken for a
// request without one: Envoy's `POST /api/v4/projects/300/deployments` with a visible PAT (or no
// credential) and the form body `access_token=<job token>`, which GitLab reads before anything
// else, was answered 200, and the job of project 100 created a deployment in project 300, whose
// allowlist does not name it. A marked check without a body now stands for a body the gate cannot see.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const DEPLOYMENTS = '/api/v4/projects/300/deployments'
// The check Envoy sends an HTTP service for a form POST with pack_as_bytes: the client's headers
// (allowed_headers matching every name), those Envoy adds, its mark, and no body.
const ENVOY = { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-proto': 'http', 'x-request-id': 'f6238991', 'x-envoy-expected-rq-timeout-ms': '200' }
const MARK = { 'x-envoy-auth-partial-body': 'false' }

test('Envoy with pack_as_bytes: a marked check without a body is one with a body the gate cannot see', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'sent', GATE_FORWARD_AUTH_ORIGINAL: 'request-line' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const visibles: Array<Record<string, string>> = [{ 'private-token': 'glpat-anything' }, {}]
  for (const visible of visibles) {
    const answer = await send(auth, 'POST', DEPLOYMENTS, { ...ENVOY, ...MARK, ...visible }, '')
    assert.equal(answer.status, 403, `${JSON.stringify(visible)}: ${answer.text}`)
    assert.equal(answer.json().code, 'BODY_NOT_VISIBLE')
  }
  // Envoy's check for a request that had no body carries no mark: nothing is hidden there.
  assert.equal((await send(auth, 'POST', DEPLOYMENTS, { ...ENVOY, 'private-token': 'glpat-anything' }, '')).status, 200)
  // The body Envoy sends (pack_as_bytes off) is read, its job token found.
  const sent = await send(auth, 'POST', DEPLOYMENTS, { ...ENVOY, ...MARK, 'private-token': 'glpat-anything' }, `access_token=${TOKENS.app}&ref=main`)
  assert.equal(sent.status, 401, sent.text)
  assert.equal(sent.json().code, 'CREDENTIAL_AMBIGUOUS')
  // An upload GitLab reads no parameters from (no type) passes marked or not, as nginx's hidden one does.
  const upload = await send(auth, 'PUT', '/api/v4/projects/100/packages/generic/t/1/t.bin', { 'job-token': TOKENS.app, ...MARK }, '')
  assert.equal(upload.status, 200, upload.text)
})
