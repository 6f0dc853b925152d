// Finding: a PUT, PATCH or DELETE body sent without a Content-Type but with a Content-Encoding
// (`gzip`, or any made-up value) was planned as an upload and forwarded uninspected. Nothing on
// GitLab's way inflates it (Workhorse only on git routes, CompressedJson only a POST's typed JSON
// on npm's audit and the error tracking routes), and Grape ignores the header: it parses the bytes
// as they came with the API's default format, JSON on the Terraform state and MLflow APIs. A job's
// token as `access_token` in such a Terraform state DELETE, or a Developer's `private_token` in an
// MLflow registered-model delete where the project keeps `ml_model` deletes to Maintainers, was a
// request without a credential to the gate, through the proxy and behind nginx alike, and GitLab
// acted on the body's credential. Such a body is read as one without the header is now: as JSON
// where it starts as an object, and passed whole where it does not (a real gzip stream).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { adminGate, gateWithPackageRule, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { TOKENS, startTestGate } from '../helpers/gate.ts'
import { rawRequest, send } from '../helpers/http.ts'

const MLFLOW_DELETE = '/api/v4/projects/200/ml/mlflow/api/2.0/mlflow/registered-models/delete'
const TF_STATE = '/api/v4/projects/200/terraform/state/prod'
const GENERIC_PUT = '/api/v4/projects/100/packages/generic/tool/1.0.0/tool.json'
const sha256 = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex')

test('a credential in an untyped body with a Content-Encoding is read as Grape reads it: the bytes as sent', async t => {
  const g = await startTestGate(t)
  for (const encoding of ['gzip', 'deflate', 'x']) {
    const res = await send(g.url, 'DELETE', TF_STATE, { 'content-encoding': encoding }, JSON.stringify({ access_token: TOKENS.app }))
    assert.equal(res.status, 401, `${encoding}: ${res.text}`)
    assert.equal(res.json().code, 'JSON_CREDENTIAL_NOT_ALLOWED', encoding)
  }
  assert.equal(g.seen.filter(s => s.url.includes('/terraform/')).length, 0, 'nothing reached GitLab')
  // A real compressed upload is no JSON to Grape either: it passes whole, as before.
  const gz = gzipSync(Buffer.from(JSON.stringify({ job_token: TOKENS.tools, data: 'x'.repeat(1000) })))
  const upload = await send(g.url, 'PUT', GENERIC_PUT, { 'job-token': TOKENS.app, 'content-encoding': 'gzip' }, gz)
  assert.equal(upload.status, 200, upload.text)
  assert.equal(g.seen.at(-1)?.sha256, sha256(gz), 'forwarded byte for byte')
})

test('a Developer\'s token in an untyped MLflow delete body with a Content-Encoding is held to the package rules', async t => {
  const g = await gateWithPackageRule(t, 'ml_model', { delete: 'maintainer' })
  const res = await send(g.url, 'DELETE', MLFLOW_DELETE, { 'content-encoding': 'gzip' }, JSON.stringify({ name: 'churn', private_token: USERS.developer }))
  assert.equal(res.status, 401, res.text)
  assert.equal(res.json().code, 'JSON_CREDENTIAL_NOT_ALLOWED')
  assert.equal(g.seen.filter(s => s.url.includes('/ml/mlflow/')).length, 0, 'nothing reached GitLab')
})

test('forward-auth: such a body hidden from the gate is a body GitLab reads credentials from', async t => {
  const g = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_ORIGINAL: 'headers' })
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const port = g.gate.authAddress()!.port
  for (const path of [MLFLOW_DELETE, TF_STATE]) {
    const res = await rawRequest(port, ['GET /_job_token_gate HTTP/1.1', 'X-Original-Method: DELETE', `X-Original-URI: ${path}`, 'X-Original-Content-Length: 57', 'Content-Encoding: gzip'])
    assert.equal(res.status, 403, `${path}: ${res.body}`)
    assert.equal(JSON.parse(res.body).code, 'BODY_NOT_VISIBLE', path)
  }
})
