// Regression: behind the shipped nginx configuration, every request with a body over 1 MiB
// answered 500. nginx checks client_max_body_size against the request's Content-Length in the
// auth_request subrequest's location too, which kept nginx's default of 1 MiB: the subrequest
// failed with 413, which auth_request turns into 500, before the gate was asked. So a Maven, npm
// or generic package upload over 1 MiB, allowed or not, failed behind nginx (`location /api/v4/`'s
// `client_max_body_size 0` never came into play), and a git push over HTTP of more than 1 MiB
// was refused 413 in `location /`, where GitLab itself sets the limits. The location that sends
// the configuration API to the gate's API listener takes any path naming its words after the
// project, and kept the default too: a package file named `job_token_scope.bin` over 1 MiB was
// nginx's 413.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { needsNginx, startShippedNginx } from '../helpers/nginx.ts'

const BIG = Buffer.alloc(3 * 1024 * 1024, 0x61)

test('behind the shipped nginx, bodies over 1 MiB are decided and forwarded', { skip: needsNginx }, async t => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' })
  const { base } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: g.gate.authAddress()!.port, api: g.gate.address().port })
  const octets = { 'content-type': 'application/octet-stream' }
  // An allowed generic package upload reaches GitLab whole.
  const allowed = await send(base, 'PUT', '/api/v4/projects/200/packages/generic/p/1.0/f.bin', { 'job-token': TOKENS.lib, ...octets }, BIG)
  assert.equal(allowed.status, 200, allowed.text)
  assert.equal(g.seen.at(-1)!.bytes, BIG.length)
  // A refused one answers the gate's refusal, not nginx's 500.
  const refused = await send(base, 'PUT', '/api/v4/projects/300/packages/generic/p/1.0/f.bin', { 'job-token': TOKENS.app, ...octets }, BIG)
  assert.equal(refused.status, 403, refused.text)
  assert.equal(refused.json().code, 'NOT_ALLOWLISTED')
  // A path the configuration API's location takes (its words after the project) is the gate
  // proxy's to decide and forward: not refused 413 by that location's default limit.
  const named = await send(base, 'PUT', '/api/v4/projects/200/packages/generic/p/1.0/job_token_scope.bin', { 'job-token': TOKENS.lib, ...octets }, BIG)
  assert.equal(named.status, 200, named.text)
  assert.equal(g.seen.at(-1)!.url, '/api/v4/projects/200/packages/generic/p/1.0/job_token_scope.bin')
  assert.equal(g.seen.at(-1)!.bytes, BIG.length)
  // Outside the API (a git push over HTTP): GitLab sets the limits.
  const push = await send(base, 'POST', '/acme/lib.git/git-receive-pack', { 'content-type': 'application/x-git-receive-pack-request' }, BIG)
  assert.equal(push.status, 200, push.text)
  assert.equal(g.seen.at(-1)!.bytes, BIG.length)
})
