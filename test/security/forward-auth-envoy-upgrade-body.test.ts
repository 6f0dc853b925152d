// Regression: Envoy's ext_authz buffers no body of an upgrade request (ext_authz.cc:
// `isWebSocketUpgradeRequest(headers)` turns `with_request_body` off) and asks at once: the check
// carries the client's `Connection: Upgrade` and `Upgrade: websocket`, `Content-Length: 0` and no
// `x-envoy-auth-partial-body` mark. Where the routes to GitLab allow WebSocket upgrades (GitLab's
// own ActionCable needs them), Envoy then forwards the request with its Content-Length and what
// follows the head, which GitLab reads as the POST's body. Under GATE_FORWARD_AUTH_BODIES=sent the
// gate took the check for a request without a body: `POST /api/v4/projects/300/deployments` with
// the upgrade headers, a visible PAT (or nothing) and the form body `access_token=<job token>` was
// answered 200. A check without a body that carries Upgrade is now one whose body the gate cannot see.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate } from '../helpers/gate.ts'
import { rawRequest } from '../helpers/http.ts'

const DEPLOYMENTS = '/api/v4/projects/300/deployments'
// The check Envoy sends an HTTP service for a WebSocket upgrade: the client's headers, upgrade
// ones included, and `Content-Length: 0`.
const UPGRADE = ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Content-Length: 0']

test('Envoy: an upgrade request\'s check without a body is one with a body the gate cannot see', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'sent', GATE_FORWARD_AUTH_ORIGINAL: 'request-line' })
  const port = g.gate.authAddress()!.port
  for (const visible of [['Private-Token: glpat-anything'], []]) {
    const answer = await rawRequest(port, [`POST ${DEPLOYMENTS} HTTP/1.1`, 'Content-Type: application/x-www-form-urlencoded', ...visible, ...UPGRADE])
    assert.equal(answer.status, 403, `${visible.join()}: ${answer.body}`)
    assert.equal(JSON.parse(answer.body).code, 'BODY_NOT_VISIBLE')
  }
  // A WebSocket handshake has no body GitLab reads parameters from: it passes.
  const handshake = await rawRequest(port, [`GET ${DEPLOYMENTS} HTTP/1.1`, 'Private-Token: glpat-anything', ...UPGRADE])
  assert.equal(handshake.status, 200, handshake.body)
  // Without the upgrade, Envoy's check without a body stands for a request without one.
  const plain = await rawRequest(port, [`POST ${DEPLOYMENTS} HTTP/1.1`, 'Content-Type: application/x-www-form-urlencoded', 'Private-Token: glpat-anything', 'Content-Length: 0'])
  assert.equal(plain.status, 200, plain.body)
})
