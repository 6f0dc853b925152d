// Finding: a project's `ml_model` rule (`delete: "maintainer"`, or `write`, which `delete`
// follows) held the model registry's deletes through GitLab's API (the MLflow `delete`,
// GraphQL's mlModelDelete and mlModelDestroy), but GitLab's web UI deletes a model by a route of
// its own: `DELETE /<namespace>/<project>/-/ml/models/:model_id` (Projects::Ml::ModelsController
// #destroy, behind `write_model_registry`, which Developers have; the page's link sends a POST
// with `_method=delete`). Outside `/api/v4`, it went to GitLab unchecked, and a Developer's
// browser session deleted the model with every version of it where the same session's
// mlModelDelete was refused. It is now an `ml_model` delete of the project its path names, for
// the session of the request's cookies, whatever job token comes with them (GitLab's web UI
// reads none).

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { TOKENS, type TestGate } from '../helpers/gate.ts'

const session = (token: string): Record<string, string> => ({ cookie: `_gitlab_session=${token}`, 'x-csrf-token': 'csrf' })
const form = { 'content-type': 'application/x-www-form-urlencoded' }

async function world (t: TestContext, rule: Record<string, string>, root = ''): Promise<TestGate> {
  const g = await adminGate(t, root === '' ? {} : { GATE_RELATIVE_URL_ROOT: root })
  const patch = await send(g.url, 'PATCH', `${root}/api/v4/projects/200/job_token_permissions`, { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: rule } }))
  assert.equal(patch.status, 200, patch.text)
  return g
}

// What GitLab routes to ModelsController#destroy of acme/lib (200).
const DELETES: ReadonlyArray<readonly [string, string, Record<string, string>, string | undefined]> = [
  ['DELETE', '/acme/lib/-/ml/models/7', {}, undefined],
  // The page's link: a form POST that Rack::MethodOverride routes as DELETE.
  ['POST', '/acme/lib/-/ml/models/7', form, '_method=delete&authenticity_token=t'],
  ['POST', '/acme/lib/-/ml/models/7', { 'x-http-method-override': 'DELETE' }, undefined],
  // Rails' optional format, a path spelled otherwise, an organization's scope.
  ['DELETE', '/acme/lib/-/ml/models/7.json', {}, undefined],
  ['DELETE', '//ACME/lib/-/ml//models/7/', {}, undefined],
  ['DELETE', '/acme%2Flib/-/ml/models/7', {}, undefined],
  ['DELETE', '/o/default/acme/lib/-/ml/models/7', {}, undefined]
]

test('a Developer\'s browser session cannot delete a registry model through the web UI where ml_model deletes are kept to Maintainers', async t => {
  for (const rule of [{ delete: 'maintainer' }, { write: 'maintainer' }] as Array<Record<string, string>>) {
    const g = await world(t, rule)
    const before = g.seen.length
    for (const [method, path, headers, body] of DELETES) {
      const res = await send(g.url, method, path, { ...session(USERS.developer), ...headers }, body)
      assert.equal(res.status, 403, `${JSON.stringify(rule)} ${method} ${path}: ${res.text}`)
      assert.equal(res.json().code, 'PACKAGE_MAINTAINER_ONLY', `${method} ${path}`)
      assert.match(res.json().message, /may delete ml_model packages of project #200/)
    }
    assert.deepEqual(g.seen.slice(before).map(s => `${s.method} ${s.url}`), [], 'nothing reached GitLab')
    // A Maintainer's session deletes.
    for (const [method, path, headers, body] of DELETES) {
      const res = await send(g.url, method, path, { ...session(USERS.maintainer), ...headers }, body)
      assert.equal(res.status, 200, `${method} ${path}: ${res.text}`)
    }
    assert.equal(g.seen.length - before, DELETES.length)
  }
})

test('a job token beside the session changes nothing: GitLab\'s web UI reads none, and signs the session in', async t => {
  const g = await world(t, { delete: 'maintainer' })
  const before = g.seen.length
  const extras: Array<Record<string, string>> = [{ 'job-token': TOKENS.lib }, { 'job-token': TOKENS.app }, { authorization: `Bearer ${TOKENS.lib}` }, { 'private-token': TOKENS.app }]
  for (const extra of extras) {
    const res = await send(g.url, 'DELETE', '/acme/lib/-/ml/models/7', { ...session(USERS.developer), ...extra })
    assert.equal(res.status, 403, `${Object.keys(extra)[0]!}: ${res.text}`)
    assert.equal(res.json().code, 'PACKAGE_MAINTAINER_ONLY')
  }
  assert.equal(g.seen.length, before, 'nothing reached GitLab')
  // A Maintainer's session, or a job token alone (no one GitLab's web UI signs in), go on.
  for (const headers of [{ ...session(USERS.maintainer), 'job-token': TOKENS.lib }, { 'job-token': TOKENS.lib }]) {
    const res = await send(g.url, 'DELETE', '/acme/lib/-/ml/models/7', headers)
    assert.equal(res.status, 200, res.text)
  }
  assert.equal(g.seen.length, before + 2)
})

test('the registry\'s pages, other projects and requests nobody signs in to are GitLab\'s', async t => {
  const g = await world(t, { delete: 'maintainer' })
  const before = g.seen.length
  for (const [method, path, headers] of [
    ['GET', '/acme/lib/-/ml/models/7', session(USERS.developer)],
    ['HEAD', '/acme/lib/-/ml/models/7', session(USERS.developer)],
    ['GET', '/acme/lib/-/ml/models/7/edit', session(USERS.developer)],
    ['GET', '/acme/lib/-/ml/models/7/versions/3', session(USERS.developer)],
    // acme/platform/app (100) sets no rule.
    ['DELETE', '/acme/platform/app/-/ml/models/7', session(USERS.developer)],
    // No session: GitLab signs no one in, and deletes nothing.
    ['DELETE', '/acme/lib/-/ml/models/7', {}],
    ['DELETE', '/acme/lib/-/ml/models/7', { cookie: 'lb=node-3; theme=dark' }]
  ] as const) {
    const res = await send(g.url, method, path, headers)
    assert.equal(res.status, 200, `${method} ${path}: ${res.text}`)
  }
  assert.equal(g.seen.length - before, 7)
})

test('under a relative URL root, the web UI\'s model delete is held to the rule there', async t => {
  const g = await world(t, { delete: 'maintainer' }, '/gitlab')
  const before = g.seen.length
  const res = await send(g.url, 'DELETE', '/gitlab/acme/lib/-/ml/models/7', session(USERS.developer))
  assert.equal(res.status, 403, res.text)
  assert.equal(res.json().code, 'PACKAGE_MAINTAINER_ONLY')
  assert.equal(g.seen.length, before)
  const maintainer = await send(g.url, 'DELETE', '/gitlab/acme/lib/-/ml/models/7', session(USERS.maintainer))
  assert.equal(maintainer.status, 200, maintainer.text)
  // Forward-auth decides the same line the same way.
  const fa = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const patch = await send(fa.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const auth = `http://127.0.0.1:${fa.gate.authAddress()!.port}`
  const checked = await send(auth, 'DELETE', '/gitlab/acme/lib/-/ml/models/7', session(USERS.developer))
  assert.equal(checked.status, 403, checked.text)
  assert.equal(checked.json().code, 'PACKAGE_MAINTAINER_ONLY')
})

// Outside the configured root the delete was no web model delete to the gate, and went on
// unchecked: GitLab runs it there if the root is wrong (GitLab served without it), and answers it
// 404 if not. Refused, whatever comes with it.
test('outside the configured root, the web UI\'s model delete is refused, not forwarded', async t => {
  const g = await world(t, { delete: 'maintainer' }, '/gitlab')
  const before = g.seen.length
  const cases: ReadonlyArray<readonly [string, string, Record<string, string>, string | undefined]> = [
    ['DELETE', '/acme/lib/-/ml/models/7', session(USERS.developer), undefined],
    ['POST', '/acme/lib/-/ml/models/7', { ...session(USERS.developer), ...form }, '_method=delete&authenticity_token=t'],
    ['DELETE', '/other/acme/lib/-/ml/models/7.json', session(USERS.maintainer), undefined],
    ['DELETE', '/acme/lib/-/ml/models/7', { ...session(USERS.developer), 'job-token': TOKENS.lib }, undefined]
  ]
  for (const [method, path, headers, body] of cases) {
    const res = await send(g.url, method, path, headers, body)
    assert.equal(res.status, 403, `${method} ${path}: ${res.text}`)
    assert.equal(res.json().code, 'API_PATH_OUTSIDE_ROOT', `${method} ${path}`)
  }
  assert.equal(g.seen.length, before, 'nothing reached GitLab')
  // Its pages there, as before.
  assert.equal((await send(g.url, 'GET', '/acme/lib/-/ml/models/7', session(USERS.developer))).status, 200)
})

// With no root configured, GitLab may still run under one (`/gitlab`), where it deletes from the
// project after the root's segments: the gate read the whole path as the project
// (gitlab/acme/lib, none), and the delete went on unchecked. Every reading is checked now.
test('with no root configured, the web UI\'s model delete under a root GitLab may have is held to that project\'s rule', async t => {
  const g = await world(t, { delete: 'maintainer' })
  const before = g.seen.length
  for (const path of ['/gitlab/acme/lib/-/ml/models/7', '/a/b/gitlab/acme/lib/-/ml/models/7', '/gitlab/o/default/acme/lib/-/ml/models/7.json']) {
    const res = await send(g.url, 'DELETE', path, session(USERS.developer))
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'PACKAGE_MAINTAINER_ONLY', path)
    assert.match(res.json().message, /project #200/)
  }
  assert.equal(g.seen.length, before, 'nothing reached GitLab')
  const maintainer = await send(g.url, 'DELETE', '/gitlab/acme/lib/-/ml/models/7', session(USERS.maintainer))
  assert.equal(maintainer.status, 200, maintainer.text)
  // Forward-auth decides the same line the same way.
  const fa = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const patch = await send(fa.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const auth = `http://127.0.0.1:${fa.gate.authAddress()!.port}`
  const checked = await send(auth, 'DELETE', '/gitlab/acme/lib/-/ml/models/7', session(USERS.developer))
  assert.equal(checked.status, 403, checked.text)
  assert.equal(checked.json().code, 'PACKAGE_MAINTAINER_ONLY')
})

test('shadowed with the packages resource, the web UI\'s model delete is logged, not refused', async t => {
  const g = await adminGate(t, { GATE_SHADOW_RESOURCES: 'packages' })
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const res = await send(g.url, 'DELETE', '/acme/lib/-/ml/models/7', session(USERS.developer))
  assert.equal(res.status, 200, res.text)
})
