// Finding: the configuration API logged every refusal with the request's path as sent, while the
// decision log writes a token-shaped path segment as `[token]`. A token pasted into an admin
// path by mistake (`/projects/$TOKEN/job_token_scope`, the wrong variable in a script) was written
// whole into the gate's log, for anyone who reads the logs to use.
//
// Now the configuration API's lines write the path as the decision log does: a segment holding
// something token-shaped is `[token]`.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { ADMIN, USERS, adminGate } from '../helpers/admin-gate.ts'

const PAT = 'glpat-pasted1into2the3path4'

test('a token in a configuration API path is never written to the log', async t => {
  const g = await adminGate(t)
  const cases: Array<[string, string, Record<string, string>, number]> = [
    // :id a token: GitLab shows no such project.
    ['GET', `/api/v4/projects/${PAT}/job_token_scope`, { 'private-token': USERS.maintainer }, 404],
    ['GET', `/api/v4/projects/${TOKENS.app}/job_token_permissions`, { 'private-token': ADMIN }, 404],
    // A job token's own path, refused before anything is looked up.
    ['GET', `/api/v4/projects/${TOKENS.lib}/job_token_scope/allowlist`, { 'job-token': TOKENS.lib }, 403],
    // The entry id a token: 400 naming the field.
    ['DELETE', `/api/v4/projects/200/job_token_scope/allowlist/${PAT}`, { 'private-token': USERS.maintainer }, 400],
    // A method the path has not, and a sub-path no endpoint has.
    ['PUT', `/api/v4/projects/${PAT}/job_token_scope`, { 'private-token': USERS.maintainer }, 405],
    ['GET', `/api/v4/projects/200/job_token_scope/${PAT}`, { 'private-token': USERS.maintainer }, 404],
    // No credential at all.
    ['GET', `/api/v4/projects/${PAT}/job_token_scope`, {}, 401]
  ]
  for (const [method, path, headers, status] of cases) {
    const res = await send(g.url, method, path, headers)
    assert.equal(res.status, status, `${method} ${path}: ${res.text}`)
  }
  const lines = g.logs.filter(l => l.admin === true)
  assert.ok(lines.length >= cases.length, 'each request has its line')
  for (const line of g.logs) {
    const text = JSON.stringify(line)
    for (const token of [PAT, TOKENS.app, TOKENS.lib]) assert.ok(!text.includes(token), `a log line holds a token: ${text}`)
  }
  assert.ok(lines.some(l => l.path === '/projects/[token]/job_token_scope'), 'the path is logged, the token as [token]')
  assert.equal(g.seen.length, 0, 'nothing was forwarded')
})
