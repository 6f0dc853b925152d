// Finding: with GitLab under a relative URL root (/gitlab) and GATE_RELATIVE_URL_ROOT not set (or
// set to another root), `/gitlab/api/v4/...` is no API path to the gate: a job token there was
// forwarded as NON_API_PATH, undecided, while GitLab served its API there. (The introspection
// resolver then failed closed, its own calls missing the root; the local JWT resolver, which
// calls nothing, did not.) A job token on a path holding /api/v4 outside the configured root is
// now refused; git over HTTP and the configured root are unchanged.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'

const job = { 'job-token': TOKENS.app }

test('a job token on /api/v4 under a root the gate was not given is refused, not forwarded', async (t) => {
  const g = await startTestGate(t)
  for (const path of ['/gitlab/api/v4/projects/300/packages/generic/tool/1.0/tool.bin', '/gitlab/%61pi/v4/projects/300/deployments', '/a/b/api/v4']) {
    const res = await send(g.url, 'PUT', path, job, 'x')
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'API_PATH_OUTSIDE_ROOT')
  }
  assert.equal(g.seen.length, 0, 'nothing was forwarded')
  // Not every path outside the API: git over HTTP is still GitLab's (GATE_NON_API_JOB_TOKENS).
  const git = await send(g.url, 'GET', '/acme/lib.git/info/refs?service=git-upload-pack', job)
  assert.equal(git.status, 200)
  // Without a job token, nothing changes.
  assert.equal((await send(g.url, 'GET', '/gitlab/api/v4/projects/300', {})).status, 200)
})

test('with a root configured, /api/v4 outside it is refused and inside it decided', async (t) => {
  const g = await startTestGate(t, { GATE_RELATIVE_URL_ROOT: '/gitlab' })
  const outside = await send(g.url, 'GET', '/api/v4/projects/200/packages', job)
  assert.equal(outside.status, 403)
  assert.equal(outside.json().code, 'API_PATH_OUTSIDE_ROOT')
  const inside = await send(g.url, 'GET', '/gitlab/api/v4/projects/200/packages', job)
  assert.equal(inside.status, 200, inside.text)
  const denied = await send(g.url, 'PUT', '/gitlab/api/v4/projects/300/packages/generic/tool/1.0/tool.bin', job, 'x')
  assert.equal(denied.status, 403)
  assert.notEqual(denied.json().code, 'API_PATH_OUTSIDE_ROOT')
})

test('forward-auth refuses it too', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const res = await send(auth, 'GET', '/', { 'x-original-method': 'GET', 'x-original-uri': '/gitlab/api/v4/projects/300/deployments', ...job })
  assert.equal(res.status, 403)
  assert.equal(res.json().code, 'API_PATH_OUTSIDE_ROOT')
})

// Nor does a job token GitLab's upload middleware would write into the parameters there (an
// `operations` member, test/security/upload-operations-parameter.slow.ts) reach GitLab: such a
// request carried no token the gate saw, and was forwarded as a path outside the API.
test('an `operations` parameter on /api/v4 under a root the gate was not given is refused, not forwarded', async (t) => {
  const g = await startTestGate(t)
  const operations = JSON.stringify({ job_token: TOKENS.app }, null, 1)
  const file = '/gitlab/api/v4/projects/300/packages/generic/tool/1.0/tool.bin'
  const multipart = `--b0\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${operations}\r\n--b0\r\nContent-Disposition: form-data; name="map"\r\n\r\n{}\r\n--b0--\r\n`
  const cases: ReadonlyArray<readonly [string, string, Record<string, string>, string]> = [
    // Workhorse hands Rails the upload as multipart, the query kept.
    ['PUT', `${file}?operations=${encodeURIComponent(operations)}&map=%7B%7D`, { 'content-type': 'application/octet-stream' }, 'x'],
    ['GET', file, { 'content-type': 'multipart/form-data; boundary=b0' }, multipart]
  ]
  for (const [method, path, headers, body] of cases) {
    const res = await send(g.url, method, path, headers, body)
    assert.equal(res.status, 400, `${method} ${path}: ${res.text}`)
    assert.equal(res.json().code, 'UPLOAD_OPERATIONS_PARAMETER')
  }
  assert.equal(g.seen.length, 0, 'nothing was forwarded')
})

test('forward-auth refuses a body it cannot see there, as on the API itself', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const ask = (uri: string, headers: Record<string, string>): ReturnType<typeof send> =>
    send(auth, 'GET', '/', { 'x-original-method': 'POST', 'x-original-uri': uri, ...headers })
  // A form's `job_token`, a JSON member, an `operations` part: GitLab would read each there.
  for (const type of ['application/x-www-form-urlencoded', 'application/json', 'multipart/form-data; boundary=b0']) {
    const res = await ask('/gitlab/api/v4/projects/300/deployments', { 'content-type': type, 'x-original-content-length': '300' })
    assert.equal(res.status, 403, `${type}: ${res.text}`)
    assert.equal(res.json().code, 'BODY_NOT_VISIBLE', type)
  }
  // Without a body, and on paths outside the API, as before.
  assert.equal((await ask('/gitlab/api/v4/projects/300/deployments', { 'x-original-content-length': '0' })).status, 200)
  assert.equal((await ask('/acme/lib/-/settings', { 'content-type': 'application/x-www-form-urlencoded', 'x-original-content-length': '300' })).status, 200)
})

// The users' package rules were held on the API root only: with GitLab under a root the gate was
// not given, a Developer's package delete at `/gitlab/api/v4/...`, where the project keeps deletes
// to Maintainers, was forwarded as a path outside the API, unchecked.
test('a package write or delete there is refused to users too, whatever its method override', async (t) => {
  const g = await adminGate(t)
  const json = { 'content-type': 'application/json' }
  const rules = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN }, JSON.stringify({ package_registry: { npm: { delete: 'maintainer' } } }))
  assert.equal(rules.status, 200, rules.text)
  const before = g.seen.length
  const developer = { 'private-token': USERS.developer }
  const cases: ReadonlyArray<readonly [string, string, Record<string, string>, string | undefined]> = [
    ['DELETE', '/gitlab/api/v4/projects/200/packages/1', developer, undefined],
    ['POST', '/gitlab/api/v4/projects/200/packages/1', { ...developer, 'content-type': 'application/x-www-form-urlencoded' }, '_method=DELETE'],
    ['PUT', '/gitlab/api/v4/projects/200/packages/npm/@acme%2fcli', { ...developer, ...json }, '{}'],
    // Any `/api/v4` of the path may follow GitLab's root, not only the first.
    ['DELETE', '/gitlab/api/v4/x/api/v4/projects/200/packages/1', developer, undefined]
  ]
  for (const [method, path, headers, body] of cases) {
    const res = await send(g.url, method, path, headers, body)
    assert.equal(res.status, 403, `${method} ${path}: ${res.text}`)
    assert.equal(res.json().code, 'API_PATH_OUTSIDE_ROOT')
  }
  assert.equal(g.seen.length, before, 'nothing was forwarded')
  // Reads, and pages outside the API, as before.
  assert.equal((await send(g.url, 'GET', '/gitlab/api/v4/projects/200/packages/1', developer)).status, 200)
  assert.equal((await send(g.url, 'POST', '/acme/api/v4/-/settings', { ...developer, 'content-type': 'application/x-www-form-urlencoded' }, 'a=1')).status, 200)
})

// The gate answers GitLab's job token scope endpoints itself, so that GitLab's allowlist cannot
// change behind its back (docs/admin.md): under a root the gate was not given they were paths
// outside the API, and an allowlist entry added (or the scope turned off) at
// `/gitlab/api/v4/projects/:id/job_token_scope...` reached GitLab's own.
test('the job token scope endpoints there are refused, not forwarded, in both modes', async (t) => {
  const g = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const json = { 'content-type': 'application/json' }
  const operator = { 'private-token': ADMIN }
  const cases: ReadonlyArray<readonly [string, string, Record<string, string>, string | undefined]> = [
    ['POST', '/gitlab/api/v4/projects/200/job_token_scope/allowlist', { ...operator, ...json }, JSON.stringify({ target_project_id: 300 })],
    ['PATCH', '/gitlab/api/v4/projects/200/job_token_scope', { ...operator, ...json }, JSON.stringify({ enabled: false })],
    ['DELETE', '/gitlab/api/v4/projects/acme%2Flib/job_token_scope/groups_allowlist/10', operator, undefined],
    ['POST', '/a/api/v4/b/api/v4/projects/200/job%5Ftoken%5Fscope.json', { ...operator, 'content-type': 'application/x-www-form-urlencoded' }, '_method=PATCH&enabled=false'],
    ['GET', '/gitlab/api/v4/projects/200/job_token_scope/allowlist', { 'private-token': USERS.maintainer }, undefined]
  ]
  for (const [method, path, headers, body] of cases) {
    const res = await send(g.url, method, path, headers, body)
    assert.equal(res.status, 403, `${method} ${path}: ${res.text}`)
    assert.equal(res.json().code, 'API_PATH_OUTSIDE_ROOT', path)
  }
  assert.equal(g.seen.length, 0, 'nothing was forwarded')
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const asked = await send(auth, 'GET', '/', { ...operator, 'x-original-method': 'DELETE', 'x-original-uri': '/gitlab/api/v4/projects/200/job_token_scope/allowlist/100', 'x-original-content-length': '0' })
  assert.equal(asked.status, 403, asked.text)
  assert.equal(asked.json().code, 'FORWARD_AUTH_GATE_ENDPOINT')
  // Other paths there, as before; the endpoints under the root are the gate's own.
  assert.equal((await send(g.url, 'GET', '/gitlab/api/v4/projects/200/job_token_scopes', operator)).status, 200)
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/job_token_scope', operator)).status, 200)
  assert.equal(g.seen.length, 1)
})
