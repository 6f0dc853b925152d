// Finding: a session beside a job token was held to the users' package rules in the package rules
// stage, after the job's decision, and on the project that decision found. A decision that
// forwards undecided never got there: with GATE_UNKNOWN_PROJECT=allow, a path GitLab shows the
// gate no project at (a service token that does not see the project, or none) and no stored
// project claims (one renamed since its rules were last written) passes as an unknown project.
// Sent alone, a Developer's session there is held to the rule of the project the path names to
// that session (src/admin/roles.ts); with any job's token beside it in a place the route does not
// read (a JOB-TOKEN header to Helm, which reads Basic alone), the request was forwarded, and GitLab
// uploaded as the Developer's session where the project keeps users' writes to Maintainers. The
// session beside a job token is now checked as it would be without the token, before the job's
// decision.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { TOKENS } from '../helpers/gate.ts'

test('a job token beside a Developer\'s session does not let a write to a project the gate cannot see past the users\' rule', async t => {
  const g = await adminGate(t, { GATE_UNKNOWN_PROJECT: 'allow' })
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { helm: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  // acme/lib (200) renamed acme/lib2 since; the service token no longer sees it.
  g.gitlab.projects.set(200, { ...g.gitlab.projects.get(200)!, pathWithNamespace: 'acme/lib2' })
  g.gitlab.serviceHidden.add(200)
  const HELM = '/api/v4/projects/acme%2Flib2/packages/helm/api/stable/charts'
  const session = (token: string): Record<string, string> => ({ cookie: `_gitlab_session=${token}`, 'x-csrf-token': 'csrf', 'content-type': 'application/octet-stream' })
  const before = g.seen.length
  for (const [name, headers, query] of [
    ['the session alone', session(USERS.developer), ''],
    ['a JOB-TOKEN header beside it', { ...session(USERS.developer), 'job-token': TOKENS.app }, ''],
    ['job_token in the query beside it', session(USERS.developer), `?job_token=${TOKENS.app}`]
  ] as const) {
    const res = await send(g.url, 'POST', HELM + query, headers, 'chart')
    assert.equal(res.status, 403, `${name}: ${res.text}`)
    assert.equal(res.json().code, 'PACKAGE_MAINTAINER_ONLY', name)
  }
  assert.equal(g.seen.length, before, 'nothing reached GitLab')
  // A Maintainer's session beside the token, and the token alone, pass as an unknown project.
  const passing: Array<Record<string, string>> = [{ ...session(USERS.maintainer), 'job-token': TOKENS.app }, { 'job-token': TOKENS.app, 'content-type': 'application/octet-stream' }]
  for (const headers of passing) {
    const res = await send(g.url, 'POST', HELM, headers, 'chart')
    assert.equal(res.status, 200, res.text)
  }
  assert.equal(g.seen.length, before + 2)
})
