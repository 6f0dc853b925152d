// Regression: GATE_FORWARD_AUTH_ORIGINAL=request-line (Envoy, which passes the client's headers on)
// promises that no X-Original-* header is read, yet under GATE_FORWARD_AUTH_BODIES=declared the
// gate believed X-Original-Content-Length: 0 there, which only the client could have sent: a form
// POST to /api/v4/projects/300/deployments whose body Envoy (without with_request_body) kept back
// was answered 200 with a visible PAT, and an `access_token=<job token>` in that body reached
// GitLab unchecked. Under request-line that statement is the client's and is not believed.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate } from '../helpers/gate.ts'
import { rawRequest } from '../helpers/http.ts'

const FORM_POST = ['POST /api/v4/projects/300/deployments HTTP/1.1', 'Content-Type: application/x-www-form-urlencoded', 'Private-Token: glpat-anything', 'Content-Length: 0']

test('request-line: a client\'s X-Original-Content-Length: 0 says nothing of the body, even under declared', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared', GATE_FORWARD_AUTH_ORIGINAL: 'request-line' })
  const port = g.gate.authAddress()!.port
  for (const stated of [['X-Original-Content-Length: 0'], []]) {
    const answer = await rawRequest(port, [...FORM_POST, ...stated])
    assert.equal(answer.status, 403, `${stated.join()}: ${answer.body}`)
    assert.equal(JSON.parse(answer.body).code, 'BODY_NOT_VISIBLE')
  }
})

test('headers: the proxy\'s X-Original-Content-Length: 0 under declared still says there is no body', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared', GATE_FORWARD_AUTH_ORIGINAL: 'headers', GATE_TRUSTED_PROXIES: '127.0.0.1/32' })
  const port = g.gate.authAddress()!.port
  const answer = await rawRequest(port, ['GET /_job_token_gate HTTP/1.1', 'X-Original-Method: POST', 'X-Original-URI: /api/v4/projects/300/deployments', 'X-Original-Content-Length: 0', 'Content-Type: application/x-www-form-urlencoded', 'Private-Token: glpat-anything'])
  assert.equal(answer.status, 200, answer.body)
})
