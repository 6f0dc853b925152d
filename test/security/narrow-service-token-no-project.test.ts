// A service token that cannot see every project is shown a 404 (or a shorter package list) for
// projects that exist. Read as "no project", the request would be forwarded with none of the
// gate's rules applied; the gate refuses instead, and still decides what such a token does find.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, projectsGate } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const HIDDEN = '/api/v4/packages/maven/acme/hidden/1.0/hidden-1.0.jar'

test('a lookup that finds nothing is refused when the service token is neither administrator nor auditor', async t => {
  const g = await projectsGate(t)
  g.gitlab.serviceRole = 'user'
  const res = await send(g.url, 'GET', HIDDEN, job(TOKENS.tools))
  assert.equal(res.status, 403)
  assert.equal(res.json().code, 'PROJECT_LOOKUP_UNVERIFIED')
  assert.match(res.json().message, /administrator or auditor/)
  assert.equal(forwarded(g, HIDDEN), 0, 'nothing reached GitLab')
  const log = await decisionOf(g, HIDDEN)
  assert.deepEqual([log.decision, log.reason, log.stage], ['deny', 'PROJECT_LOOKUP_UNVERIFIED', 'resolve_grants'])
  // A project the token does see is decided as before.
  const jar = '/api/v4/packages/maven/acme/lib/1.0/lib-1.0.jar'
  assert.equal((await send(g.url, 'GET', jar, job(TOKENS.tools))).json().code, 'NOT_ALLOWLISTED')
  assert.equal((await send(g.url, 'GET', jar, job(TOKENS.lib))).status, 200)
})

test('the token\'s rights are asked once; an administrator or an auditor token lets "no project" through', async t => {
  for (const role of ['admin', 'auditor'] as const) {
    const g = await projectsGate(t)
    g.gitlab.serviceRole = role
    for (const path of [HIDDEN, '/api/v4/packages/maven/acme/other/2.0/other-2.0.jar']) {
      assert.equal((await send(g.url, 'GET', path, job(TOKENS.tools))).status, 200, `${role} ${path}`)
      assert.equal((await decisionOf(g, path)).reason, 'NO_PROJECT', `${role} ${path}`)
    }
    assert.equal(g.gitlab.calls.service_user, 2, `${role}: GET /user and GET /users/:id asked once each`)
  }
})

test('GitLab failing to say what the service token is: 503, never a forward', async t => {
  const g = await projectsGate(t)
  g.gitlab.failWith.service_user = 500
  const res = await send(g.url, 'GET', HIDDEN, job(TOKENS.tools))
  assert.equal(res.status, 503)
  assert.equal(res.json().code, 'PROJECT_LOOKUP_UNAVAILABLE')
  assert.equal(forwarded(g, HIDDEN), 0)
})
