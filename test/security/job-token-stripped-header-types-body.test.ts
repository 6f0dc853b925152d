// Finding: a job token on a route that takes none is stripped, and every header holding it was
// dropped, whatever the header: `Content-Type: application/json; x=<job token>` went too. GitLab
// then read the POST's body untyped: Rack::MethodOverride parses it as a form, and Grape merges its
// JSON reading over that, so a JSON body the gate read as `{"name": ..., "x": "&private_token=...
// &_method=DELETE&"}` held, to GitLab, a Developer's `private_token` and `_method=DELETE`. With any
// running job's token in JOB-TOKEN, a Developer's MLflow registered-model delete passed as a
// request without a user credential and GitLab deleted the model as the Developer where the
// project keeps `ml_model` deletes to Maintainers. Only a header GitLab reads a credential from is
// dropped now; a token in any other is refused.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gateWithPackageRule, USERS } from '../helpers/admin-gate.ts'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { startRackOracle } from '../helpers/rack-oracle.ts'
import { requireRack } from '../rack/rack-available.ts'

const T = TOKENS.app
const DELETE = '/api/v4/projects/200/ml/mlflow/api/2.0/mlflow/registered-models/delete'
const BODY = JSON.stringify({ name: 'churn', x: `&private_token=${USERS.developer}&_method=DELETE&` })

test('what Rack reads of such a body once its Content-Type is gone: the Developer\'s token, and a DELETE', async (t) => {
  if (!requireRack(t)) return
  const oracle = startRackOracle()
  t.after(() => oracle.close())
  const typed = await oracle.ask({ method: 'POST', target: DELETE, headers: [['Content-Type', `application/json; x=${T}`]], body: Buffer.from(BODY) })
  assert.equal(typed.method, 'POST')
  assert.ok(!typed.creds.some(([, value]) => value === USERS.developer), JSON.stringify(typed.creds))
  const untyped = await oracle.ask({ method: 'POST', target: DELETE, headers: [], body: Buffer.from(BODY) })
  assert.equal(untyped.method, 'DELETE')
  assert.ok(untyped.creds.some(([, value]) => value === USERS.developer), JSON.stringify(untyped.creds))
})

test('a job token in a header GitLab reads no credential from is refused, never stripped', async (t) => {
  const g = await gateWithPackageRule(t, 'ml_model', { delete: 'maintainer' })
  const before = g.seen.length
  for (const [path, headers] of [
    [DELETE, { 'content-type': `application/json; x=${T}`, 'job-token': T }],
    [DELETE, { 'content-type': `application/octet-stream; x=${T}`, 'job-token': T }],
    [DELETE, { 'content-type': 'application/json', 'x-note': T, 'job-token': T }],
    ['/api/v4/projects/200/variables', { 'content-type': `application/json; x=${T}`, job_token: T }]
  ] as const) {
    const res = await send(g.url, 'POST', path, headers, BODY)
    assert.equal(res.status, 403, `${JSON.stringify(Object.keys(headers))}: ${res.text}`)
    assert.equal(res.json().code, 'ROUTE_NOT_FOR_JOB_TOKENS')
  }
  assert.equal(g.seen.length, before, 'nothing reached GitLab')
  // In the headers that carry credentials alone, it is stripped as before, the type kept.
  const stripped = await send(g.url, 'POST', '/api/v4/projects/200/variables', { 'content-type': 'application/json', 'job-token': T }, JSON.stringify({ key: 'A', value: 'b' }))
  assert.equal(stripped.status, 200, stripped.text)
  assert.equal(g.seen.at(-1)!.headers['content-type'], 'application/json')
  assert.equal(g.seen.at(-1)!.headers['job-token'], undefined)
})
