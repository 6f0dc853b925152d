// Finding: a project's `ml_model` rule (`write`/`delete: "maintainer"`) covered only the model
// registry's package API (`/projects/:id/packages/ml_models/...`), while GitLab's MLflow API writes
// the same registry (lib/api/ml/mlflow/registered_models.rb, model_versions.rb: registered-models
// create, update and delete, model-versions create and update, behind `write_model_registry`, which
// Developers have). It takes no job token, but a Developer's MLFLOW_TRACKING_TOKEN went to GitLab
// unchecked, creating, changing and deleting models where only Maintainers may. Such a request is
// now an `ml_model` write (a delete for `delete`) of the project; reads, experiment tracking and
// Maintainers are left to GitLab, and job tokens stay refused as on any route that takes none.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { gateWithPackageRule, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { TOKENS, type TestGate } from '../helpers/gate.ts'

const MLFLOW = '/api/v4/projects/200/ml/mlflow/api/2.0/mlflow'
const json = { 'content-type': 'application/json' }

const world = async (t: TestContext, rule: Record<string, string>): Promise<TestGate> => await gateWithPackageRule(t, 'ml_model', rule)

// What the MLflow client sends (MLFLOW_TRACKING_TOKEN as Bearer), and what else GitLab routes there.
const WRITES: ReadonlyArray<readonly [string, string, string]> = [
  ['POST', `${MLFLOW}/registered-models/create`, '{"name":"churn"}'],
  ['PATCH', `${MLFLOW}/registered-models/update`, '{"name":"churn","description":"x"}'],
  ['POST', `${MLFLOW}/model-versions/create`, '{"name":"churn"}'],
  ['PATCH', `${MLFLOW}/model-versions/update.json`, '{"name":"churn","version":"1.0.0","description":"x"}'],
  ['POST', '/api/v4/projects/acme%2Flib/ml/mlflow/api/2.0/mlflow/registered-models/set-tag', '{"name":"churn","key":"k","value":"v"}'],
  ['PUT', '/api/v4/projects/200/ml/mlflow/api/2.0/mlflow-artifacts/artifacts/5/MLmodel', '{"flavors":{}}']
]
const DELETES: ReadonlyArray<readonly [string, string, string]> = [
  ['DELETE', `${MLFLOW}/registered-models/delete`, '{"name":"churn"}'],
  ['DELETE', `${MLFLOW}/model-versions/delete`, '{"name":"churn","version":"1.0.0"}'],
  // Rack::MethodOverride routes it as the DELETE.
  ['POST', `${MLFLOW}/registered-models/delete?_method=DELETE`, '{"name":"churn"}']
]

test('a Developer\'s MLflow writes and deletes of the model registry are held to the ml_model rule', async (t) => {
  const g = await world(t, { write: 'maintainer' })
  const before = g.seen.length
  for (const [method, path, body] of [...WRITES, ...DELETES]) {
    const res = await send(g.url, method, path, { ...json, authorization: `Bearer ${USERS.developer}` }, body)
    assert.equal(res.status, 403, `${method} ${path}: ${res.text}`)
    assert.equal((res.json() as { code: string }).code, 'PACKAGE_MAINTAINER_ONLY', `${method} ${path}`)
  }
  assert.deepEqual(g.seen.slice(before).map(s => `${s.method} ${s.url}`), [], 'nothing reached GitLab')
  // A Maintainer's go to GitLab.
  for (const [method, path, body] of [...WRITES, ...DELETES]) {
    const res = await send(g.url, method, path, { ...json, authorization: `Bearer ${USERS.maintainer}` }, body)
    assert.equal(res.status, 200, `${method} ${path}: ${res.text}`)
  }
  assert.equal(g.seen.length - before, WRITES.length + DELETES.length)
})

test('a delete-only rule holds MLflow deletes, not writes', async (t) => {
  const g = await world(t, { delete: 'maintainer' })
  for (const [method, path, body] of DELETES) {
    const res = await send(g.url, method, path, { ...json, authorization: `Bearer ${USERS.developer}` }, body)
    assert.equal(res.status, 403, `${method} ${path}: ${res.text}`)
    assert.match((res.json() as { message: string }).message, /may delete ml_model packages of project #200/)
  }
  for (const [method, path, body] of WRITES) {
    const res = await send(g.url, method, path, { ...json, authorization: `Bearer ${USERS.developer}` }, body)
    assert.equal(res.status, 200, `${method} ${path}: ${res.text}`)
  }
})

test('reads, experiment tracking and other projects\' rules are GitLab\'s; job tokens stay refused', async (t) => {
  const g = await world(t, { write: 'maintainer' })
  const others: ReadonlyArray<readonly [string, string, string | undefined]> = [
    ['GET', `${MLFLOW}/registered-models/get?name=churn`, undefined],
    ['POST', `${MLFLOW}/registered-models/get-latest-versions`, '{"name":"churn"}'],
    ['GET', '/api/v4/projects/200/ml/mlflow/api/2.0/mlflow-artifacts/artifacts/5/model.pkl', undefined],
    ['POST', `${MLFLOW}/runs/create`, '{"experiment_id":1}'],
    ['POST', `${MLFLOW}/experiments/create`, '{"name":"e"}'],
    // acme/platform/app (100) sets no rule.
    ['DELETE', '/api/v4/projects/100/ml/mlflow/api/2.0/mlflow/registered-models/delete', '{"name":"churn"}']
  ]
  for (const [method, path, body] of others) {
    const res = await send(g.url, method, path, { ...json, authorization: `Bearer ${USERS.developer}` }, body)
    assert.equal(res.status, 200, `${method} ${path}: ${res.text}`)
  }
  // GitLab's MLflow API takes no job token: 401 as Bearer, as before.
  const res = await send(g.url, 'POST', `${MLFLOW}/registered-models/create`, { ...json, authorization: `Bearer ${TOKENS.lib}` }, '{"name":"churn"}')
  assert.equal(res.status, 401, res.text)
})
