// Finding: GitLab's GraphQL upload middleware (the apollo_upload_server gem's
// ApolloUploadServer::Middleware, which its Railtie puts in front of every Rails request, the
// API's too) runs wherever the Content-Type holds `multipart/form-data`. When the parameters hold
// `operations` and `map`, the query's or the body's, it parses `operations` as JSON and writes
// each member into ActionDispatch's parameters, which GitLab's token finders read. The gate read
// `operations` in GraphQL requests only: `?operations={"job_token": "<token>"}&map={}` on a
// package download, or such an `operations` part in an upload, held no credential to it, and the
// request went to GitLab as one without a job token while GitLab authenticated the job, its
// project off the target's allowlist. On API paths such a request is refused now, 400
// UPLOAD_OPERATIONS_PARAMETER: an `operations` query parameter (Workhorse hands Rails its uploads
// as multipart whatever the client sent), an `operations` part, buffered or streamed, and a
// Content-Type naming multipart/form-data over a form or JSON body.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send, sendChunked } from '../helpers/http.ts'
import { multipartPieces } from '../helpers/multipart-body.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { apolloUnavailable, askApolloStack, type StackRequest } from '../helpers/apollo-stack.ts'

// acme/platform/app's job (project 100) is on no allowlist of other/tools (300).
const DOWNLOAD = '/api/v4/projects/300/packages/generic/pkg/1.0/file.txt'
const UPLOAD = '/api/v4/projects/300/packages/pypi'
const B = 'operations-boundary'
const { part, end, type, bigFile } = multipartPieces(B)
/** Pretty-printed, as no token shape starts a value: the job token is a member, not the text. */
const OPERATIONS = JSON.stringify({ query: '{ a }', job_token: TOKENS.app }, null, 1)
const QUERY = `operations=${encodeURIComponent(OPERATIONS)}&map=%7B%7D`
const operationsParts = Buffer.concat([part(['Content-Disposition: form-data; name="operations"'], OPERATIONS), part(['Content-Disposition: form-data; name="map"'], '{}')])

test('GitLab\'s stack: the upload middleware writes `operations` members into the parameters its token finders read, on an API route', async (t) => {
  if (!requireTool(t, apolloUnavailable())) return
  // The route answers what Grape's params and ActionDispatch's (what Gitlab::Auth::AuthFinders
  // reads, `ActionDispatch::Request.new(env.dup).params`) hold.
  const json = `{"operations": ${JSON.stringify(OPERATIONS)}, "map": "{}"}`
  const requests: StackRequest[] = [
    [`${DOWNLOAD}?${QUERY}`, type['content-type'], ''],
    [`${DOWNLOAD}?${QUERY}`, null, ''],
    [DOWNLOAD, type['content-type'], Buffer.concat([operationsParts, end]).toString('latin1')],
    [DOWNLOAD, 'application/json; x="multipart/form-data"', json],
    [DOWNLOAD, 'application/json', json]
  ]
  const answers = askApolloStack("'api/v4/projects/:id/packages/generic/:n/:v/:f', requirements: { v: /[^\\/]+/, f: /[^\\/]+/ }, format: false",
    "{ grape: params[:job_token], rails: ActionDispatch::Request.new(env.dup).params['job_token'] }", requests)
  assert.deepEqual(answers, [
    { grape: null, rails: TOKENS.app },
    { grape: null, rails: null },
    { grape: null, rails: TOKENS.app },
    { grape: null, rails: TOKENS.app },
    { grape: null, rails: null }
  ])
})

test('a job token in `operations` is refused on API paths, in the query, a multipart body or under a Content-Type naming multipart/form-data', async (t) => {
  const g = await startTestGate(t)
  const json = JSON.stringify({ operations: OPERATIONS, map: '{}' })
  const cases: ReadonlyArray<readonly [string, string, Record<string, string>, string | Buffer | undefined]> = [
    ['GET', `${DOWNLOAD}?${QUERY}`, type, undefined],
    // Workhorse hands Rails an upload as multipart whatever the client's Content-Type.
    ['PUT', `${DOWNLOAD}?${QUERY}`, { 'content-type': 'application/octet-stream' }, 'data'],
    ['GET', `${DOWNLOAD}?x=1;%6Fperations[]=${encodeURIComponent(OPERATIONS)}&map=%7B%7D`, {}, undefined],
    ['GET', DOWNLOAD, type, Buffer.concat([operationsParts, end])],
    ['POST', UPLOAD, type, Buffer.concat([part(['Content-Disposition: form-data; name="name"'], 'pkg'), operationsParts, end])],
    ['GET', DOWNLOAD, { 'content-type': 'application/json; x="multipart/form-data"' }, json]
  ]
  for (const [method, path, headers, body] of cases) {
    const answer = await send(g.url, method, path, headers, body)
    assert.equal(answer.status, 400, `${method} ${path} ${JSON.stringify(headers)}: ${answer.text}`)
    assert.equal(answer.json().code, 'UPLOAD_OPERATIONS_PARAMETER', `${method} ${path}`)
  }
  // Streamed past the inspection limit: refused before the closing delimiter reaches GitLab.
  const streamed = await sendChunked(g.url, UPLOAD, type, [bigFile, operationsParts, end])
  assert.equal(streamed.status, 400, streamed.body)
  assert.ok(g.seen.every(s => s.bytes < bigFile.length + operationsParts.length), 'no complete upload reached GitLab')
  assert.deepEqual(g.seen.filter(s => s.method !== 'POST'), [], 'nothing else reached GitLab')
})

test('without an `operations` parameter the same requests are decided as before', async (t) => {
  const g = await startTestGate(t)
  const refused = await send(g.url, 'GET', DOWNLOAD, { ...type, 'job-token': TOKENS.app })
  assert.equal(refused.json().code, 'NOT_ALLOWLISTED')
  const own = await send(g.url, 'POST', '/api/v4/projects/100/packages/pypi', { ...type, 'job-token': TOKENS.app }, Buffer.concat([part(['Content-Disposition: form-data; name="name"'], 'pkg'), end]))
  assert.equal(own.status, 200, own.text)
  // GitLab's GraphQL reads `operations` itself, and the gate with it (src/admin/graphql.ts).
  const graphql = await send(g.url, 'POST', '/api/graphql', type, Buffer.concat([part(['Content-Disposition: form-data; name="operations"'], '{"query": "{ currentUser { id } }"}'), part(['Content-Disposition: form-data; name="map"'], '{}'), end]))
  assert.equal(graphql.status, 200, graphql.text)
})
