// Regression: under GATE_FORWARD_AUTH_ORIGINAL=auto (the default) a check request that no header
// names another request than its own line is Envoy's, which passes the client's headers on. Under
// GATE_FORWARD_AUTH_BODIES=declared the gate believed an X-Original-Content-Length: 0 there (and
// with X-Original-URI/-Method naming the line itself), which only the client could have sent: a
// form POST to /api/v4/projects/300/deployments whose body Envoy kept back was answered 200 with a
// visible PAT, and an `access_token=<job token>` in that body reached GitLab unchecked. Only a
// proxy asking on a path of its own (nginx's /_job_token_gate) declares the length.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate } from '../helpers/gate.ts'
import { rawRequest } from '../helpers/http.ts'

const DEPLOYMENTS = '/api/v4/projects/300/deployments'
const FORM = ['Content-Type: application/x-www-form-urlencoded', 'Private-Token: glpat-anything', 'X-Original-Content-Length: 0']

test('auto: a check that is the request itself takes X-Original-Content-Length: 0 for the client\'s', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared', GATE_TRUSTED_PROXIES: '127.0.0.1/32' })
  const port = g.gate.authAddress()!.port
  for (const naming of [[], ['X-Original-Method: POST', `X-Original-URI: ${DEPLOYMENTS}`]]) {
    const answer = await rawRequest(port, [`POST ${DEPLOYMENTS} HTTP/1.1`, 'Content-Length: 0', ...FORM, ...naming])
    assert.equal(answer.status, 403, `${naming.join()}: ${answer.body}`)
    assert.equal(JSON.parse(answer.body).code, 'BODY_NOT_VISIBLE')
  }
  // nginx asks on a path of its own and declares the length: believed.
  const nginx = await rawRequest(port, ['GET /_job_token_gate HTTP/1.1', 'X-Original-Method: POST', `X-Original-URI: ${DEPLOYMENTS}`, ...FORM])
  assert.equal(nginx.status, 200, nginx.body)
})
