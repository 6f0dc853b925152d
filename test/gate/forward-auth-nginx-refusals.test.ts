// Behind the shipped nginx configuration, a request the gate refuses is answered with the gate's
// own body, as in proxy mode: GitLab's message, the gate's code and the request id. nginx's
// auth_request keeps nothing of a refusal's body but answers the client with its own HTML error
// page, so a CI job refused behind nginx read "403 Forbidden" in HTML and could not tell a
// missing policy from a body the gate cannot see (BODY_NOT_VISIBLE, which tells it to use the
// gate as a proxy). The gate sends the body in X-Job-Token-Gate-Answer too, and the
// configuration answers it for auth_request's 401 and 403.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { needsNginx, startShippedNginx } from '../helpers/nginx.ts'
import { REFUSED_PORT } from '../helpers/ports.ts'

test('the decision endpoint sends its refusal\'s body as a header too, in ASCII', async t => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const ask = (method: string, uri: string, headers: Record<string, string>): ReturnType<typeof send> =>
    send(auth, 'GET', '/', { 'x-original-method': method, 'x-original-uri': uri, ...headers })
  const missing = await ask('PUT', '/api/v4/projects/200/packages/npm/foo', { 'job-token': TOKENS.app })
  assert.equal(missing.status, 403)
  assert.deepEqual(JSON.parse(String(missing.headers['x-job-token-gate-answer'])), missing.json())
  // npm reads `error`, as from the proxy.
  assert.equal(missing.json().error, missing.json().message)
  // A project named by a path outside ASCII: the header holds JSON escapes, the same text once parsed.
  const named = await ask('GET', '/api/v4/projects/acme%2F%C3%A9t%C3%A9/packages', { 'job-token': TOKENS.tools })
  assert.equal(named.status, 403, named.text)
  assert.match(String(named.headers['x-job-token-gate-answer']), /^[\x20-\x7e]+$/)
  assert.deepEqual(JSON.parse(String(named.headers['x-job-token-gate-answer'])), named.json())
  // Too long for one header (nginx reads a decision's headers into 4 KiB): its status, code and id.
  // (A path the gate still looks up: a longer one is refused with a short message.)
  const long = await ask('GET', `/api/v4/projects/acme%2F${'x'.repeat(2040)}/packages`, { 'job-token': TOKENS.tools })
  assert.equal(long.json().code, 'UNKNOWN_PROJECT')
  assert.equal(long.status, 403)
  assert.deepEqual(JSON.parse(String(long.headers['x-job-token-gate-answer'])), { message: '403 Forbidden', code: long.json().code, request_id: long.json().request_id })
  const allowed = await ask('GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.app })
  assert.equal(allowed.status, 200)
  assert.equal(allowed.headers['x-job-token-gate-answer'], undefined)
})

test('behind the shipped nginx: refusals answer the gate\'s body, 401s with their challenge', { skip: needsNginx }, async t => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' })
  const { base } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: g.gate.authAddress()!.port, api: g.gate.address().port })
  const cases: Array<[string, string, string, Record<string, string>, string | undefined, number, string]> = [
    ['npm publish, read_packages only', 'PUT', '/api/v4/projects/200/packages/npm/foo', { authorization: `Bearer ${TOKENS.app}` }, undefined, 403, 'MISSING_POLICIES'],
    ['not allowlisted', 'GET', '/api/v4/projects/300/releases', { 'job-token': TOKENS.app }, undefined, 403, 'NOT_ALLOWLISTED'],
    ['release-cli create: a JSON body nginx does not pass on', 'POST', '/api/v4/projects/200/releases', { 'job-token': TOKENS.lib, 'content-type': 'application/json' }, '{"tag_name":"v1.0","ref":"main"}', 403, 'BODY_NOT_VISIBLE'],
    ['a finished job\'s token', 'GET', '/api/v4/projects/200/packages/maven/a/b/1/b.jar', { 'job-token': TOKENS.appFinished }, undefined, 401, 'TOKEN_JOB_NOT_RUNNING'],
    // auth_request answers 500 for any other status: the configuration answers the gate's.
    ['a dot segment, outside the API', 'GET', '/acme/lib.git/info/refs/%2e%2e/x', { 'job-token': TOKENS.app }, undefined, 400, 'PATH_DOT_SEGMENT'],
    ['GitLab cannot be asked about the job', 'GET', '/api/v4/projects/600/packages', { 'job-token': TOKENS.web }, undefined, 503, 'IDENTITY_UPSTREAM_UNAVAILABLE']
  ]
  for (const [name, method, path, headers, body, status, code] of cases) {
    if (status === 503) g.gitlab.failWith.job = 503
    const res = await send(base, method, path, headers, body)
    delete g.gitlab.failWith.job
    assert.equal(res.status, status, `${name}: ${res.text}`)
    assert.match(String(res.headers['content-type']), /^application\/json/, name)
    const answer = res.json()
    assert.equal(answer.code, code, name)
    assert.match(answer.message, new RegExp(`^${status} `), name)
    assert.equal(res.headers['x-request-id'], answer.request_id, name)
    if (status === 401) assert.equal(res.headers['www-authenticate'], 'Basic realm="GitLab Packages Registry"', name)
  }
  // GitLab's own refusals pass as GitLab sent them.
  g.respond = (_req, res) => {
    res.writeHead(403, { 'content-type': 'application/json' })
    res.end('{"message":"403 Forbidden"}')
  }
  const upstream = await send(base, 'GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.app })
  assert.equal(upstream.status, 403)
  assert.equal(upstream.text, '{"message":"403 Forbidden"}')
})

test('behind the shipped nginx: a gate nginx cannot reach is a 503 that says so, and nothing is passed on', { skip: needsNginx }, async t => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  // The gate's decision listener on a port nothing listens on.
  const { base } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: REFUSED_PORT, api: g.gate.address().port })
  const res = await send(base, 'GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.app })
  assert.equal(res.status, 503, res.text)
  assert.match(String(res.headers['content-type']), /^application\/json/)
  assert.equal(res.json().code, 'GATE_UNREACHABLE')
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})
