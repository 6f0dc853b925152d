// Finding: in forward-auth the gate never sees the body, and GitLab reads `private_token` and
// `access_token` from a form or JSON body before the headers. Catalogued package routes with such
// a body are refused (BODY_NOT_VISIBLE), but a package write the catalog does not list, which the
// users' package rules hold all the same (GitLab's MLflow API, whose clients send JSON bodies), was
// decided on the headers alone: a Developer's MLflow delete with their token in the JSON body and
// none in the headers was a request without a credential to the gate, left to GitLab, and GitLab
// deleted the registered model as the Developer where the project keeps `ml_model` deletes to
// Maintainers (a Maintainer's token in the headers did not help: the body's `private_token` comes
// first). Where a project's rule binds such a write and its body is hidden, it is refused now.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { rawRequest, send } from '../helpers/http.ts'
import { needsNginx, startShippedNginx } from '../helpers/nginx.ts'

const MLFLOW = '/api/v4/projects/200/ml/mlflow/api/2.0/mlflow'
const json = { 'content-type': 'application/json' }

test('behind the shipped nginx, an MLflow write whose token is in the hidden body is held to the package rules', { skip: needsNginx }, async t => {
  const g = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' })
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const { port } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: g.gate.authAddress()!.port, api: g.gate.address().port })
  const before = g.seen.length
  for (const [method, path, body, headers] of [
    ['DELETE', `${MLFLOW}/registered-models/delete`, { name: 'churn', private_token: USERS.developer }, []],
    ['POST', `${MLFLOW}/registered-models/create`, { name: 'churn', access_token: USERS.developer }, []],
    ['DELETE', `${MLFLOW}/registered-models/delete`, { name: 'churn', private_token: USERS.developer }, [`Authorization: Bearer ${USERS.maintainer}`]],
    ['PATCH', '/api/v4/projects/acme%2Flib/ml/mlflow/api/2.0/mlflow/registered-models/update', { name: 'churn', private_token: USERS.developer }, []]
  ] as const) {
    const text = JSON.stringify(body)
    const answer = await rawRequest(port, [`${method} ${path} HTTP/1.1`, 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(text)}`, ...headers], text)
    assert.equal(answer.status, 403, `${method} ${path}: ${answer.body}`)
    assert.equal(JSON.parse(answer.body).code, 'BODY_NOT_VISIBLE', `${method} ${path}`)
  }
  assert.deepEqual(g.seen.slice(before).map(s => `${s.method} ${s.url}`), [], 'nothing reached GitLab')

  // Without a body, a Maintainer's token decides as before; a form body, too, is refused.
  const bare = await rawRequest(port, [`DELETE ${MLFLOW}/registered-models/delete HTTP/1.1`, `Authorization: Bearer ${USERS.maintainer}`])
  assert.equal(bare.status, 200, bare.body)
  const fields = `name=x&private_token=${USERS.developer}`
  const form = await rawRequest(port, [`POST ${MLFLOW}/registered-models/create HTTP/1.1`, 'Content-Type: application/x-www-form-urlencoded', `Content-Length: ${fields.length}`, `Authorization: Bearer ${USERS.maintainer}`], fields)
  assert.equal(form.status, 403, form.body)
})

test('forward-auth: a hidden body is refused only where a project\'s rule binds the write', async t => {
  const g = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_ORIGINAL: 'headers' })
  const port = g.gate.authAddress()!.port
  const check = async (path: string): Promise<{ status: number, body: string }> => await rawRequest(port, ['GET /_job_token_gate HTTP/1.1', 'X-Original-Method: POST', `X-Original-URI: ${path}`,
    'X-Original-Content-Length: 40', 'Content-Type: application/json', `Authorization: Bearer ${USERS.maintainer}`])
  // No rule: GitLab decides, as before.
  const free = await check(`${MLFLOW}/registered-models/create`)
  assert.equal(free.status, 200, free.body)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const held = await check(`${MLFLOW}/registered-models/create`)
  assert.equal(held.status, 403, held.body)
  assert.equal(JSON.parse(held.body).code, 'BODY_NOT_VISIBLE')
  // The proxy sees the body: a Maintainer's token there passes.
  const proxied = await send(g.url, 'POST', `${MLFLOW}/registered-models/create`, json, JSON.stringify({ name: 'churn', private_token: USERS.maintainer }))
  assert.equal(proxied.status, 200, proxied.text)
  const developer = await send(g.url, 'POST', `${MLFLOW}/registered-models/create`, json, JSON.stringify({ name: 'churn', private_token: USERS.developer }))
  assert.equal(developer.status, 403, developer.text)
})
