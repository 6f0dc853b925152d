// Finding: behind Envoy (ext_authz), whose check request is the client's own request line with the
// client's headers passed on, the gate believed a client's X-Original-URI naming an allowed API
// request wherever the line was not one it knows GitLab reads job tokens at. GitLab reads a job
// token on more pages than any list holds (Basic `gitlab-ci-token` on `/-/raw/`, archives, release
// downloads, feeds, even `/`, as versions and a feature flag have it), and `/` is also the check
// path of ingress-nginx and Traefik, so no list of paths can tell the two apart: a job's request
// for a private project's raw file was answered 200 under GATE_NON_API_JOB_TOKENS=deny.
//
// GATE_FORWARD_AUTH_ORIGINAL says what names the request: `request-line` (Envoy) never reads those
// headers and decides the line itself; `headers` (nginx, ingress-nginx, Traefik) always reads them
// and refuses a check request that names none; `auto` (the default) keeps the reading of both.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const basic = { authorization: 'Basic ' + Buffer.from(`gitlab-ci-token:${TOKENS.app}`).toString('base64') }
const spoof = { 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/100/packages' }
const RAW = '/other/tools/-/raw/main/README.md'

test('request-line: a client\'s X-Original-* is never read; the line is decided', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_NON_API_JOB_TOKENS: 'deny', GATE_FORWARD_AUTH_ORIGINAL: 'request-line' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  for (const line of [RAW, '/', '/other/tools/-/archive/main/tools-main.zip']) {
    const answer = await send(auth, 'GET', line, { ...basic, ...spoof })
    assert.equal(answer.status, 403, `${line}: ${answer.text}`)
    assert.equal(answer.json().code, 'NON_API_JOB_TOKEN', line)
  }
  // An API line is decided as itself, whatever the headers name.
  const denied = await send(auth, 'GET', '/api/v4/projects/300/releases', { 'job-token': TOKENS.app, ...spoof })
  assert.equal(denied.status, 403, denied.text)
  assert.notEqual(denied.json().code, 'FORWARD_AUTH_UNTRUSTED')
  const allowed = await send(auth, 'GET', '/api/v4/projects/100/packages', { 'job-token': TOKENS.app, 'x-original-uri': '/api/v4/projects/300/releases' })
  assert.equal(allowed.status, 200, allowed.text)
})

test('auto (the default) believes a trusted peer\'s headers on a line it does not know GitLab reads a job token at', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_NON_API_JOB_TOKENS: 'deny' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  // The limit the setting closes for Envoy: the spoofed request is decided in the line's place.
  assert.equal((await send(auth, 'GET', RAW, { ...basic, ...spoof })).status, 200)
})

test('headers: a check request naming no original request is refused; one naming it is decided', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_ORIGINAL: 'headers' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const none = await send(auth, 'GET', '/api/v4/projects/100/packages', { 'job-token': TOKENS.app })
  assert.equal(none.status, 403, none.text)
  assert.equal(none.json().code, 'FORWARD_AUTH_NO_ORIGINAL')
  const named = await send(auth, 'GET', '/_job_token_gate', { 'job-token': TOKENS.app, ...spoof })
  assert.equal(named.status, 200, named.text)
  const other = await send(auth, 'GET', '/', { 'job-token': TOKENS.app, 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/300/releases' })
  assert.equal(other.status, 403, other.text)
  assert.notEqual(other.json().code, 'FORWARD_AUTH_NO_ORIGINAL')
})
