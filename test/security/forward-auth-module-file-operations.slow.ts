// Finding: forward-auth decides a route that declares `authenticate_with` on the credentials it
// sees, a body it cannot see included, since GitLab's TokenLocator reads headers and the query
// string only. But GitLab's upload middleware (ApolloUploadServer::Middleware) writes the members
// of a multipart body's `operations` into ActionDispatch's query parameters, and the Terraform
// module registry's `file` route reads its JWT from the query's `token` there. A module download
// with a multipart Content-Type, whose hidden body held `operations` {"token": "<JWT>"} beside a
// `map`, was answered 200 with no credential to decide on, while GitLab authenticated the job the
// JWT carries. Such a hidden body is refused now, 403 BODY_NOT_VISIBLE, on the module registry's
// routes; other `authenticate_with` routes (Helm, NuGet...) read no query token and are decided on
// the visible credential as before.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { apolloUnavailable, askApolloStack } from '../helpers/apollo-stack.ts'

const FILE = '/api/v4/packages/terraform/modules/v1/other/tools/local/1.0.0/file'
const MULTIPART = { 'content-type': 'multipart/form-data; boundary=b0' }
const basic = (user: string, token: string): string => `Basic ${Buffer.from(`${user}:${token}`).toString('base64')}`

test('GitLab\'s stack: a multipart body\'s `operations` member lands in the query parameters TokenLocator reads', async (t) => {
  if (!requireTool(t, apolloUnavailable())) return
  // TokenLocator's `token_param` is `request.query_parameters['token']` of Gitlab::Auth's
  // `current_request` (`ActionDispatch::Request.new(env.dup)`).
  const body = `--b0\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{"token": "JWT"}\r\n` +
    '--b0\r\nContent-Disposition: form-data; name="map"\r\n\r\n{}\r\n--b0--\r\n'
  assert.deepEqual(askApolloStack("'api/v4/packages/terraform/modules/v1/:ns/:name/:sys/:ver/file', requirements: { ver: /[^\\/]+/ }", "{ token: ActionDispatch::Request.new(env.dup).query_parameters['token'] }", [[FILE, MULTIPART['content-type'], body]]), [{ token: 'JWT' }])
})

test('forward-auth: a hidden body under multipart/form-data on the module registry\'s routes is refused; other authenticate_with routes as before', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const ask = (method: string, uri: string, headers: Record<string, string>): ReturnType<typeof send> =>
    send(auth, 'GET', '/', { 'x-original-method': method, 'x-original-uri': uri, ...headers })

  for (const type of [MULTIPART['content-type'], 'application/json; x="multipart/form-data"']) {
    const hidden = await ask('GET', FILE, { 'content-type': type, 'x-original-content-length': '300' })
    assert.equal(hidden.status, 403, `${type}: ${hidden.text}`)
    assert.equal(hidden.json().code, 'BODY_NOT_VISIBLE', type)
  }
  // Without a body, or one the middleware does not run on, the request is decided as before.
  assert.equal((await ask('GET', FILE, { 'x-original-content-length': '0' })).status, 200)
  assert.equal((await ask('GET', FILE, { 'content-type': 'application/octet-stream', 'x-original-content-length': '300' })).status, 200)
  // Helm's upload reads Basic only: its hidden multipart body is still decided on the visible job token.
  const helm = await ask('POST', '/api/v4/projects/200/packages/helm/api/stable/charts', { ...MULTIPART, 'x-original-content-length': '300', authorization: basic('anyone', TOKENS.lib) })
  assert.equal(helm.status, 200, helm.text)
})
