// Finding: forward-auth decides a route that declares `authenticate_with` on the credentials it
// sees, since GitLab's TokenLocator reads no body. The virtual registries' shared authentication
// (lib/api/concerns/virtual_registries/shared_authentication.rb) reads a job token from the query's
// `job_token` (`request.query_parameters`), into which GitLab's upload middleware
// (ApolloUploadServer::Middleware) writes the members of a multipart body's `operations`. A
// virtual registry request under a multipart Content-Type whose hidden body held `operations`
// {"job_token": "<token>"} beside a `map` was answered 200 with no credential to decide on, while
// GitLab authenticated the job: past GATE_UNRESOLVED_PROJECT=deny, which refuses job tokens on
// these routes. Such a hidden body is refused now, 403 BODY_NOT_VISIBLE, on every virtual
// registry route, listed in the catalog or not (their siblings share the authentication).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { apolloUnavailable, askApolloStack } from '../helpers/apollo-stack.ts'

const UPSTREAMS = '/api/v4/groups/30/-/virtual_registries/packages/maven/upstreams'
const PATHS = [
  UPSTREAMS,
  '/api/v4/virtual_registries/packages/maven/registries/7/cache',
  '/api/v4/virtual_registries/packages/maven/7/com/acme/lib/1.0/lib-1.0.jar',
  // Not in the catalog (an npm registry's package metadata): the same authentication.
  '/api/v4/virtual_registries/packages/npm/7/lodash'
]
const MULTIPART = 'multipart/form-data; boundary=b0'

test('GitLab\'s stack: a multipart body\'s `operations` member lands in the query\'s `job_token` TokenLocator reads', async (t) => {
  if (!requireTool(t, apolloUnavailable())) return
  // TokenLocator's `job_token_param` is `request.query_parameters['job_token']` of Gitlab::Auth's
  // `current_request` (`ActionDispatch::Request.new(env.dup)`).
  const body = `--b0\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{"job_token": "T"}\r\n` +
    '--b0\r\nContent-Disposition: form-data; name="map"\r\n\r\n{}\r\n--b0--\r\n'
  assert.deepEqual(askApolloStack("'api/v4/groups/:id/-/virtual_registries/packages/maven/upstreams'", "{ job_token: ActionDispatch::Request.new(env.dup).query_parameters['job_token'] }", [[UPSTREAMS, MULTIPART, body]]), [{ job_token: 'T' }])
})

test('forward-auth: a hidden body under multipart/form-data on a virtual registry route is refused', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared', GATE_UNRESOLVED_PROJECT: 'deny' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const ask = (method: string, uri: string, headers: Record<string, string>): ReturnType<typeof send> =>
    send(auth, 'GET', '/', { 'x-original-method': method, 'x-original-uri': uri, ...headers })

  // A job token the gate sees is refused there with this setting.
  const visible = await ask('GET', UPSTREAMS, { 'job-token': TOKENS.app })
  assert.equal(visible.json().code, 'PROJECT_NOT_IN_URL', visible.text)
  for (const path of PATHS) {
    for (const type of [MULTIPART, 'application/json; x="multipart/form-data"']) {
      const hidden = await ask('GET', path, { 'content-type': type, 'x-original-content-length': '300' })
      assert.equal(hidden.status, 403, `${path} ${type}: ${hidden.text}`)
      assert.equal(hidden.json().code, 'BODY_NOT_VISIBLE', `${path} ${type}`)
    }
  }
  // Without a body, or one the middleware does not run on, the request is decided as before.
  assert.equal((await ask('GET', UPSTREAMS, { 'x-original-content-length': '0' })).status, 200)
  assert.equal((await ask('GET', UPSTREAMS, { 'content-type': 'application/octet-stream', 'x-original-content-length': '300' })).status, 200)
  // A path outside the virtual registries is not held to it.
  assert.equal((await ask('GET', '/api/v4/groups/30/-/packages', { 'content-type': MULTIPART, 'x-original-content-length': '300' })).status, 200)
})
