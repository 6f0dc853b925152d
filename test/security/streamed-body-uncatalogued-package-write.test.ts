// Finding: a package write the catalog does not list (GitLab's MLflow API, held to the `ml_model`
// rule: src/routing/package-fallback.ts) whose JSON body is over the inspection limit streams to
// GitLab through the JSON guard, which refused only job tokens there: the catalog's package writes
// refuse every credential in a streamed body, since the users' role check must know the caller
// before the body goes upstream. A Developer's MLflow delete with their token in a 70 KB JSON body,
// or in a JSON body of any length sent without a Content-Type (streamed, and read as JSON by the
// MLflow API), and none in the headers was a request without a credential to the gate, and GitLab (which reads
// `private_token` from a JSON body before the headers) deleted the model as the Developer where the
// project keeps `ml_model` deletes to Maintainers; through the proxy and forward-auth with the body
// sent alike. Such a credential is refused now, as on the catalog's package writes.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, gateWithPackageRule, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { send, sendChunked } from '../helpers/http.ts'

const MLFLOW = '/api/v4/projects/200/ml/mlflow/api/2.0/mlflow'
const json = { 'content-type': 'application/json' }
const large = (fields: Record<string, string>): string => JSON.stringify({ name: 'churn', description: 'x'.repeat(70_000), ...fields })

test('a token in a streamed JSON body of an MLflow write is refused, as on the catalog\'s package writes', async t => {
  const g = await gateWithPackageRule(t, 'ml_model', { write: 'maintainer', delete: 'maintainer' })
  const before = g.seen.length
  for (const [method, path, fields, headers] of [
    ['DELETE', `${MLFLOW}/registered-models/delete`, { private_token: USERS.developer }, {}],
    ['POST', `${MLFLOW}/registered-models/create`, { access_token: USERS.developer }, {}],
    ['PATCH', `${MLFLOW}/registered-models/update`, { private_token: USERS.developer }, {}],
    // Rack::MethodOverride routes the read as the delete.
    ['POST', `${MLFLOW}/registered-models/search`, { private_token: USERS.developer }, { 'x-http-method-override': 'DELETE' }]
  ] as const) {
    const res = await send(g.url, method, path, { ...json, ...headers }, large(fields))
    assert.equal(res.status, 401, `${method} ${path}: ${res.text}`)
    assert.equal(res.json().code, 'JSON_CREDENTIAL_NOT_ALLOWED', `${method} ${path}`)
  }
  // A body without a Content-Type is streamed whatever its length, and the MLflow API reads it
  // as JSON (Grape's `default_format :json`): the 57 bytes of a delete passed so.
  for (const [method, path] of [['DELETE', `${MLFLOW}/registered-models/delete`], ['PATCH', `${MLFLOW}/registered-models/update`]] as const) {
    const res = await send(g.url, method, path, {}, JSON.stringify({ name: 'churn', private_token: USERS.developer }))
    assert.equal(res.status, 401, `${method} ${path} untyped: ${res.text}`)
    assert.equal(res.json().code, 'JSON_CREDENTIAL_NOT_ALLOWED')
  }
  // Chunked, with a Maintainer's token in the headers: the body's comes first in GitLab.
  const text = large({ private_token: USERS.developer })
  const chunked = await sendChunked(g.url, `${MLFLOW}/registered-models/delete`, { ...json, authorization: `Bearer ${USERS.maintainer}` }, [text.slice(0, 40_000), text.slice(40_000)])
  assert.notEqual(chunked.status, 200, chunked.body)
  assert.deepEqual(g.seen.slice(before).filter(s => s.url.includes('/ml/mlflow/')).map(s => `${s.method} ${s.url}`), [], 'nothing reached GitLab')
  // A large body without a credential, its token in a header, is decided as before.
  const maintainer = await send(g.url, 'DELETE', `${MLFLOW}/registered-models/delete`, { ...json, authorization: `Bearer ${USERS.maintainer}` }, large({}))
  assert.equal(maintainer.status, 200, maintainer.text)
  const developer = await send(g.url, 'DELETE', `${MLFLOW}/registered-models/delete`, { ...json, authorization: `Bearer ${USERS.developer}` }, large({}))
  assert.equal(developer.status, 403, developer.text)
})

test('forward-auth with the body sent (Traefik forwardBody): a token in a long MLflow body is refused', async t => {
  const g = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const res = await send(auth, 'POST', '/', { 'x-forwarded-method': 'DELETE', 'x-forwarded-uri': `${MLFLOW}/registered-models/delete`, ...json }, large({ private_token: USERS.developer }))
  assert.equal(res.status, 401, res.text)
  assert.equal(res.json().code, 'JSON_CREDENTIAL_NOT_ALLOWED')
})
