// Regression: GitLab's Go middleware (lib/gitlab/middleware/go.rb) answers any request whose
// `go-get` parameter is 1, on any path and before Rails routes it, and reads HTTP Basic there with
// Gitlab::Auth.find_for_git_client: `gitlab-ci-token` and a job's token authenticate the job, and
// the answer names a private project the job may read, and its default branch. An Envoy decision
// request is the request GitLab gets; on `/other/tools?go-get=1` the gate believed a client's
// X-Original-URI naming an allowed API request, answered 200, and Envoy sent the job token to
// GitLab past GATE_NON_API_JOB_TOKENS=deny. A line with a `go-get` parameter, in any spelling
// Rack reads as one, is now one GitLab acts on a job token at: headers naming another request
// are refused there. The middleware reads `request["go-get"]`, Rack::Request#params: a
// `POST /other/tools` with the form body `go-get=1` was still believed, and answered 200. The
// request is ActionDispatch's, whose params hold a JSON body's members as well: so was a
// `POST /other/tools` with the JSON body `{"go-get": 1}`.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { railsUnavailable } from '../helpers/rails-routes.ts'
import { requireTool } from '../helpers/require-tool.ts'

// GitLab's Go middleware's test, `request["go-get"].to_i == 1` on an ActionDispatch::Request, for
// each [method, Content-Type, body] on stdin (JSON); true or false for each on stdout.
const GO_REQUEST_RB = `
require 'json'
require 'action_dispatch'
answers = JSON.parse($stdin.read).map do |method, type, body|
  env = Rack::MockRequest.env_for('/other/tools', method: method, input: body, 'CONTENT_TYPE' => type)
  ActionDispatch::Request.new(env)['go-get'].to_i == 1
end
puts JSON.generate(answers)
`

test('GitLab\'s Go middleware reads go-get from a JSON body as from a form, on any method', t => {
  if (!requireTool(t, railsUnavailable())) return
  const cases = [
    ['POST', 'application/x-www-form-urlencoded', 'go-get=1'],
    ['POST', 'application/json', '{"go-get": 1}'],
    ['GET', 'Application/JSON; charset=utf-8', '{"go-get": "1"}'],
    ['PUT', 'application/json', '{"go-get": 1}']
  ]
  const run = spawnSync('ruby', ['-W0', '-e', GO_REQUEST_RB], { input: JSON.stringify(cases), encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  assert.deepEqual(JSON.parse(run.stdout), cases.map(() => true))
})

test('an Envoy decision request with go-get: a client\'s X-Original-* naming another request is refused', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_NON_API_JOB_TOKENS: 'deny' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const basic = { authorization: 'Basic ' + Buffer.from(`gitlab-ci-token:${TOKENS.app}`).toString('base64') }
  const spoofs: Array<Record<string, string>> = [
    { 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/100/packages' },
    { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/v4/projects/100/packages' },
    { 'x-original-url': 'https://gitlab.example/api/v4/projects/100/packages' }
  ]
  const lines = [
    '/other/tools?go-get=1',
    '/other/tools/sub/pkg?x=1&go-get=1',
    '/other/tools?a=b;go-get=1',
    '/other/tools?go%2Dget=1',
    '/other/tools?go-get[]=1',
    '/other/tools?go-get=01'
  ]
  for (const line of lines) {
    // The line on its own: a job token outside the API, refused as the setting says.
    const own = await send(auth, 'GET', line, basic)
    assert.equal(own.status, 403, `${line}: ${own.text}`)
    assert.equal(own.json().code, 'NON_API_JOB_TOKEN', line)
    for (const spoof of spoofs) {
      const answer = await send(auth, 'GET', line, { ...basic, ...spoof })
      assert.equal(answer.status, 403, `${line} ${JSON.stringify(spoof)}: ${answer.text}`)
      assert.equal(answer.json().code, 'FORWARD_AUTH_UNTRUSTED', `${line} ${JSON.stringify(spoof)}`)
    }
  }
  // Rack::Request#params holds the body's parameters too: a form or multipart body (on any
  // method), or a POST's without a type, whether Envoy sends it (with_request_body) or not.
  const MULTIPART = 'multipart/form-data; boundary=b'
  const bodies: Array<[string, string | undefined, string]> = [
    ['POST', 'application/x-www-form-urlencoded', 'go-get=1'],
    ['POST', undefined, 'go-get=1'],
    ['PUT', 'application/x-www-form-urlencoded', 'a=b&go-get=1'],
    ['POST', MULTIPART, '--b\r\nContent-Disposition: form-data; name="go-get"\r\n\r\n1\r\n--b--\r\n'],
    ['POST', MULTIPART, ''],
    // ActionDispatch::Request#params holds a JSON body's members too, on any method.
    ['POST', 'application/json', '{"go-get": 1}'],
    ['GET', 'Application/JSON; charset=utf-8', '{"go-get": "1"}'],
    ['PUT', 'application/vnd.git-lfs+json', '']
  ]
  for (const [method, type, body] of bodies) {
    for (const spoof of spoofs) {
      const answer = await send(auth, method, '/other/tools', { ...basic, ...spoof, ...(type === undefined ? {} : { 'content-type': type }) }, body)
      assert.equal(answer.status, 403, `${method} ${type ?? '(no type)'} ${JSON.stringify(body)} ${JSON.stringify(spoof)}: ${answer.text}`)
      assert.equal(answer.json().code, 'FORWARD_AUTH_UNTRUSTED', `${method} ${type ?? '(no type)'} ${JSON.stringify(body)}`)
    }
  }
  // nginx's auth_request and the other proxies ask on a fixed path of their own: the original
  // request, go-get included, is read from the headers and decided there.
  const asked = await send(auth, 'GET', '/_job_token_gate', { ...basic, 'x-original-method': 'GET', 'x-original-uri': '/other/tools?go-get=1' })
  assert.equal(asked.status, 403, asked.text)
  assert.equal(asked.json().code, 'NON_API_JOB_TOKEN')
  const allowed = await send(auth, 'GET', '/_job_token_gate', { 'job-token': TOKENS.app, 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/100/packages' })
  assert.equal(allowed.status, 200, allowed.text)
  // A parameter that only looks alike is no go-get.
  const other = await send(auth, 'GET', '/other/tools?go-getter=1', { 'job-token': TOKENS.app, 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/100/packages' })
  assert.equal(other.status, 200, other.text)
})
