// Finding: behind Envoy (forward-auth, GATE_FORWARD_AUTH_ORIGINAL=auto, the default) the check
// request's own line is the request GitLab gets, and a trusted peer's X-Original-* or
// X-Forwarded-* were believed on any line outside the API that GitLab reads no job token at. GitLab's
// web UI deletes a registry model on such a line (`DELETE /<namespace>/<project>/-/ml/models/:id`,
// held to the project's ml_model delete rule for the session of its cookies): a Developer's
// session sending it with `X-Original-Method: GET` had the read decided, 200, and Envoy sent the
// delete on to GitLab. Headers naming another request than that line are now refused.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

const session = (token: string): Record<string, string> => ({ cookie: `_gitlab_session=${token}`, 'x-csrf-token': 'csrf' })

test('an Envoy check of the web UI\'s model delete: a client\'s X-Original-* naming another request is refused', async t => {
  const g = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const MODEL = '/acme/lib/-/ml/models/7'
  assert.equal((await send(auth, 'DELETE', MODEL, session(USERS.developer))).status, 403)
  const spoofs: Array<[string, string, Record<string, string>]> = [
    ['DELETE', MODEL, { 'x-original-method': 'GET', 'x-original-uri': MODEL }],
    ['DELETE', MODEL, { 'x-original-method': 'GET' }],
    ['DELETE', MODEL, { 'x-forwarded-method': 'GET', 'x-forwarded-uri': MODEL }],
    ['DELETE', MODEL, { 'x-original-uri': '/acme/lib/-/ml/models' }],
    ['DELETE', MODEL, { 'x-original-url': 'https://gitlab.example/acme/lib/-/ml/models' }],
    // The page's link: a POST that Rack's `_method` routes as the delete.
    ['POST', MODEL, { 'x-original-method': 'GET', 'x-original-uri': MODEL }],
    ['DELETE', '/o/default/acme/lib/-/ml/models/7.json', { 'x-original-method': 'GET' }]
  ]
  for (const [method, line, spoof] of spoofs) {
    const answer = await send(auth, method, line, { ...session(USERS.developer), ...spoof })
    assert.equal(answer.status, 403, `${method} ${line} ${JSON.stringify(spoof)}: ${answer.text}`)
    assert.equal(answer.json().code, 'FORWARD_AUTH_UNTRUSTED', `${method} ${line} ${JSON.stringify(spoof)}`)
  }
  // Headers naming the line itself are decided as the line is; nginx's own path names the delete.
  const own = { 'x-original-method': 'DELETE', 'x-original-uri': MODEL }
  const developer = await send(auth, 'DELETE', MODEL, { ...session(USERS.developer), ...own })
  assert.equal(developer.status, 403, developer.text)
  assert.equal(developer.json().code, 'PACKAGE_MAINTAINER_ONLY')
  assert.equal((await send(auth, 'DELETE', MODEL, { ...session(USERS.maintainer), ...own })).status, 200)
  assert.equal((await send(auth, 'GET', '/_job_token_gate', { ...session(USERS.developer), ...own })).status, 403)
  assert.equal((await send(auth, 'GET', '/_job_token_gate', { ...session(USERS.maintainer), ...own })).status, 200)
  // The model's page is a read, and may name itself.
  assert.equal((await send(auth, 'GET', MODEL, { ...session(USERS.developer), 'x-original-method': 'GET', 'x-original-uri': MODEL })).status, 200)
})

// Outside a configured root the delete is refused (GitLab runs it there if the root is wrong):
// the same line is Envoy's request too, so headers naming another request are not believed there.
test('outside the configured root: refused, and an Envoy line there names only itself', async t => {
  const g = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_RELATIVE_URL_ROOT: '/gitlab' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const MODEL = '/acme/lib/-/ml/models/7'
  const own = await send(auth, 'GET', '/_job_token_gate', { ...session(USERS.maintainer), 'x-original-method': 'DELETE', 'x-original-uri': MODEL })
  assert.equal(own.status, 403, own.text)
  assert.equal(own.json().code, 'API_PATH_OUTSIDE_ROOT')
  const spoofed = await send(auth, 'DELETE', MODEL, { ...session(USERS.maintainer), 'x-original-method': 'GET', 'x-original-uri': MODEL })
  assert.equal(spoofed.status, 403, spoofed.text)
  assert.equal(spoofed.json().code, 'FORWARD_AUTH_UNTRUSTED')
})
