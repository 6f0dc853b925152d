// Envoy's ext_authz (HTTP service) sends the original method and path as the decision request's
// own line and, with `allowed_headers` matching every header (which the gate needs to see a
// JOB-TOKEN at all), the client's headers too. From a trusted peer (an Envoy sidecar on loopback,
// trusted by default) the gate took a client's X-Original-URI and X-Original-Method over that
// line: a PUT the job may not make was decided as the GET it named, answered 200, and Envoy sent
// the PUT to GitLab. Headers naming another request than an API request line are now refused,
// an API line being one GitLab reads as such: `/%61pi/v4/...` was taken for a proxy's own path.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

test('an Envoy decision request: a client\'s X-Original-* naming another request is refused', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const job = { 'job-token': TOKENS.app }
  // Publishing to acme/lib needs admin_packages, which the job of acme/platform/app lacks.
  const PUBLISH = '/api/v4/projects/200/packages/npm/foo'
  assert.equal((await send(auth, 'PUT', PUBLISH, job)).status, 403)
  const spoofs: Array<Record<string, string>> = [
    { 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/200/packages' },
    { 'x-original-method': 'GET' },
    { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/v4/projects/100/packages' },
    { 'x-original-url': 'https://gitlab.example/api/v4/projects/100/packages' }
  ]
  for (const spoof of spoofs) {
    const answer = await send(auth, 'PUT', PUBLISH, { ...job, ...spoof })
    assert.equal(answer.status, 403, `${JSON.stringify(spoof)}: ${answer.text}`)
    assert.equal(answer.json().code, 'FORWARD_AUTH_UNTRUSTED', JSON.stringify(spoof))
  }
  // An API path as GitLab reads it, whatever the escapes of its literals: Grape matches `%61` as
  // the `a` of `/api`, so Envoy's `/%61pi/v4/...` is the API request, and naming another is refused.
  for (const line of ['/%61pi/v4/projects/200/packages/npm/foo', '/ap%69/v4/projects/200/packages/npm/foo', '/api/v%34/projects/200/packages/npm/foo']) {
    assert.equal((await send(auth, 'PUT', line, job)).status, 403, line)
    const answer = await send(auth, 'PUT', line, { ...job, 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/200/packages' })
    assert.equal(answer.status, 403, `${line}: ${answer.text}`)
    assert.equal(answer.json().code, 'FORWARD_AUTH_UNTRUSTED', line)
  }
  // Headers naming the request line itself, and the fixed paths other proxies ask on, still work.
  assert.equal((await send(auth, 'GET', '/api/v4/projects/200/packages', { ...job, 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/200/packages' })).status, 200)
  assert.equal((await send(auth, 'GET', '/_job_token_gate', { ...job, 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/200/packages' })).status, 200)
  assert.equal((await send(auth, 'GET', '/', { ...job, 'x-forwarded-method': 'PUT', 'x-forwarded-uri': PUBLISH })).status, 403)
})

// Envoy's own line may also be a request GitLab acts on a job token at outside /api/v4: GraphQL
// (which forward-auth refuses, the gate answering it on its API listener), git over HTTP and LFS,
// and the container registry's /jwt/auth (NON_API_JOB_TOKEN with GATE_NON_API_JOB_TOKENS=deny).
// A client's X-Original-URI naming an allowed API request was decided in their place, 200, and
// Envoy sent the GraphQL or git request on undecided.
test('an Envoy decision request on GraphQL or a git path: a client\'s X-Original-* naming another request is refused', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_NON_API_JOB_TOKENS: 'deny' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const job = { 'job-token': TOKENS.app }
  const spoof = { 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/100/packages' }
  const lines: Array<[string, string, string]> = [
    ['POST', '/api/graphql', 'FORWARD_AUTH_GATE_ENDPOINT'],
    ['GET', '/api/graphql.json?query=mutation%7B%7D', 'FORWARD_AUTH_GATE_ENDPOINT'],
    // GitLab's GraphQL under a relative URL root the gate was not told of (refused as GraphQL).
    ['POST', '/gitlab/api/graphql', 'FORWARD_AUTH_GATE_ENDPOINT'],
    ['GET', '/other/tools.git/info/refs?service=git-upload-pack', 'NON_API_JOB_TOKEN'],
    ['POST', '/other/tools.git/git-receive-pack', 'NON_API_JOB_TOKEN'],
    ['POST', '/other/tools%2Egit/info/lfs/objects/batch', 'NON_API_JOB_TOKEN'],
    ['GET', '/jwt/auth?service=container_registry&scope=repository:other/tools:pull', 'NON_API_JOB_TOKEN']
  ]
  for (const [method, line, code] of lines) {
    const own = await send(auth, method, line, job)
    assert.equal(own.status, 403, `${method} ${line}: ${own.text}`)
    assert.equal(own.json().code, code, `${method} ${line}`)
    const spoofs: Array<Record<string, string>> = [spoof, { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/v4/projects/100/packages' }, { 'x-original-url': 'https://gitlab.example/api/v4/projects/100/packages' }]
    for (const headers of spoofs) {
      const answer = await send(auth, method, line, { ...job, ...headers })
      assert.equal(answer.status, 403, `${method} ${line} ${JSON.stringify(headers)}: ${answer.text}`)
      assert.equal(answer.json().code, 'FORWARD_AUTH_UNTRUSTED', `${method} ${line}`)
    }
  }
  // A proxy's own path that GitLab serves nothing at is still its fixed path.
  assert.equal((await send(auth, 'GET', '/_job_token_gate', { ...job, ...spoof })).status, 200)
  assert.equal((await send(auth, 'GET', '/', { ...job, ...spoof })).status, 200)
})
