// Finding: GitLab's API declares two content types, so Grape appends `(.:format)` to every route
// and takes any extension as the format, answering JSON whatever it named: `DELETE
// /projects/:id/packages/5.xml` (or `.txt`, `.%2E`, `.%2F`) deletes package 5. The gate's routes
// knew only `.json`: such a path had no route, so a job token was refused there, but a user's
// delete was no package delete to the users' package rules, and a Developer deleted a package the
// project keeps to Maintainers, in proxy and forward-auth modes alike. A path no route takes as
// written is now matched with its extension read as the format.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

const PATHS = [
  '/api/v4/projects/200/packages/5.xml',
  '/api/v4/projects/200/packages/5.txt',
  '/api/v4/projects/200/packages/5.%2E',
  '/api/v4/projects/200/packages/5.%2e%2E',
  '/api/v4/projects/200/packages/5.%2F',
  `/api/v4/projects/200/packages/5.${'%2E'.repeat(40)}`,
  '/api/v4/projects/200/packages/5.%20',
  '/api/v4/projects/acme%2Flib/packages/5.xml',
  '/api/v4/projects/200/packages/5/package_files/6.xml',
  '/api/v4/projects/200/packages/5/package_files/6.%2E'
]

test('a package delete with any format is held to the users\' delete rule, in proxy and forward-auth modes', async t => {
  const g = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { generic: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  for (const path of PATHS) {
    const before = g.seen.length
    const proxied = await send(g.url, 'DELETE', path, { 'private-token': USERS.developer })
    assert.equal(proxied.status, 403, `proxy: DELETE ${path}: ${proxied.text}`)
    assert.equal(proxied.json().code, 'PACKAGE_MAINTAINER_ONLY', `proxy: DELETE ${path}`)
    assert.ok(!g.seen.slice(before).some(s => s.method === 'DELETE'), `proxy: DELETE ${path} reached GitLab`)
    const nginx = await send(auth, 'GET', '/_job_token_gate', { 'private-token': USERS.developer, 'x-original-method': 'DELETE', 'x-original-uri': path })
    assert.equal(nginx.status, 403, `forward-auth (nginx): DELETE ${path}: ${nginx.text}`)
    const envoy = await send(auth, 'DELETE', path, { 'private-token': USERS.developer })
    assert.equal(envoy.status, 403, `forward-auth (Envoy): DELETE ${path}: ${envoy.text}`)
    // A Maintainer's is GitLab's to run, as the path is sent.
    const maintainer = await send(g.url, 'DELETE', path, { 'private-token': USERS.maintainer })
    assert.equal(maintainer.status, 200, `proxy, Maintainer: DELETE ${path}: ${maintainer.text}`)
    assert.equal((await send(auth, 'DELETE', path, { 'private-token': USERS.maintainer })).status, 200, `forward-auth, Maintainer: DELETE ${path}`)
  }
})
