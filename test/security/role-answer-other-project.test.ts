// Finding: the users' package rules ask GitLab `GET /projects/<id>` with the caller's credential
// and read the caller's role from the answer, without checking that the answer is for the
// project asked. Ids never move, so an answer for another id can only come from something in
// front of GitLab that mixed answers up; the gate then took a Developer's Maintainer role in
// another project for the one whose writes it keeps to Maintainers. Such an answer is now no
// answer: the role check fails closed (503 ROLE_CHECK_UNAVAILABLE), and it is not cached.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const ADMIN = 'gate-operator-secret-token'
const DEVELOPER = 'glpat-developer-of-lib-maintainer-of-app'
const MAVEN_PUT = '/api/v4/projects/200/packages/maven/com/acme/lib/1.0/lib-1.0.jar'

test('a role answered for another project does not count for the one asked', async t => {
  // A Developer of acme/lib (200), Maintainer of acme/platform/app (100).
  const g = await startTestGate(t, { GATE_ADMIN_TOKEN: ADMIN }, { users: { [DEVELOPER]: { id: 43, username: 'dev', access: { 200: 30, 100: 40 } } } })
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { maven: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)

  // Something in front of GitLab answers the caller's /projects/200 with project 100.
  g.gitlab.mixedUp.set(200, 100)
  const before = g.seen.length
  const mixed = await send(g.url, 'PUT', MAVEN_PUT, { 'private-token': DEVELOPER }, 'bytes')
  assert.equal(mixed.status, 503, mixed.text)
  assert.equal(mixed.json().code, 'ROLE_CHECK_UNAVAILABLE')
  assert.equal(g.seen.length, before, 'the upload did not reach GitLab')

  // Not kept: once GitLab answers for the project asked, its answer decides.
  g.gitlab.mixedUp.clear()
  const again = await send(g.url, 'PUT', MAVEN_PUT, { 'private-token': DEVELOPER }, 'bytes')
  assert.equal(again.status, 403, again.text)
  assert.equal(again.json().code, 'PACKAGE_MAINTAINER_ONLY')
})
