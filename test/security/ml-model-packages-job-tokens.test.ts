// Finding: GitLab's model registry package API (`/projects/:id/packages/ml_models/:model_version_id/
// files/(*path/):file_name` and its `/authorize`: lib/api/ml_model_packages.rb) takes job tokens
// through `authenticate_with` (the last word of Authorization, `http_bearer_token`) and finds the
// project with find_project! (authorized_user_project: allowlist, then policies: none). The catalog
// lacked it, so the gate answered a job token there as GitLab answers one on a route that takes
// none (401), and an allowlisted job could not upload or download model files. It is in the
// catalog now, decided as the other authenticate_with routes, and `ml_model` is a package format
// of the package rules.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { assertForwardedWithToken, assertRefusedOutsideAndFineGrained } from '../helpers/job-token-routes.ts'

// acme/lib (200): acme/platform/app (100) has a fine-grained entry with read_packages; every other
// acme job (acme/platform/web, 600) has default permissions; other/tools (300) is not allowlisted.
const ROUTES: ReadonlyArray<{ method: string, path: string, body?: string }> = [
  { method: 'GET', path: '/api/v4/projects/200/packages/ml_models/5/files/model.pkl' },
  { method: 'GET', path: '/api/v4/projects/acme%2Flib/packages/ml_models/candidate:5/files/my_dir/model.pkl' },
  { method: 'PUT', path: '/api/v4/projects/200/packages/ml_models/5/files/my_dir/model.pkl/authorize' },
  { method: 'PUT', path: '/api/v4/projects/200/packages/ml_models/5/files/model.pkl', body: 'model' }
]

const send$ = (g: TestGate, route: typeof ROUTES[number], token: string): ReturnType<typeof send> =>
  send(g.url, route.method, route.path, { authorization: `Bearer ${token}` }, route.body)

test('an allowlisted job reaches the model files, its token forwarded', async t => {
  const g = await startTestGate(t)
  await assertForwardedWithToken(g, ROUTES, (route, token) => send$(g, route, token), seen => String(seen.headers.authorization).replace(/^Bearer /, ''))
})

test('a job outside the allowlist is refused with GitLab\'s message; a fine-grained entry as on routes without policies', async t => {
  const g = await startTestGate(t)
  await assertRefusedOutsideAndFineGrained(g, ROUTES, (route, token) => send$(g, route, token))
})

test('the package rules hold: model files are `ml_model` packages', async t => {
  const g = await adminGate(t)
  const json = { 'content-type': 'application/json', 'private-token': ADMIN }
  const keepWrites = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', json, JSON.stringify({ package_registry: { ml_model: { write: 'maintainer' } } }))
  assert.equal(keepWrites.status, 200, keepWrites.text)
  for (const route of ROUTES) {
    const res = await send$(g, route, TOKENS.web)
    assert.equal(res.status, route.method === 'GET' ? 200 : 403, `${route.method} ${route.path}: ${res.text}`)
    if (route.method !== 'GET') assert.equal(res.json().code, 'PACKAGE_MAINTAINER_ONLY')
  }
  // A Developer's write there, and one under `ml_models` no catalog route lists, is a model write too.
  for (const [method, path] of [['PUT', ROUTES[3]!.path], ['DELETE', '/api/v4/projects/200/packages/ml_models/5/files/model.pkl']] as const) {
    const res = await send(g.url, method, path, { 'private-token': USERS.developer })
    assert.equal(res.status, 403, `${method} ${path}: ${res.text}`)
    assert.equal(res.json().code, 'PACKAGE_MAINTAINER_ONLY')
  }
  const noReads = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', json, JSON.stringify({ package_registry: { ml_model: { read: false, write: 'maintainer' } } }))
  assert.equal(noReads.status, 200, noReads.text)
  const read = await send$(g, ROUTES[0]!, TOKENS.web)
  assert.equal(read.status, 403, read.text)
  assert.equal(read.json().code, 'PACKAGE_READ_DISABLED')
})
