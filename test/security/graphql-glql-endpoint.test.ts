// Regression: GitLab serves its GraphQL at two paths, `/api/graphql` and `/api/glql`
// (config/routes/api.rb: `match '/api/glql', via: [:get, :post], to: 'glql/base#execute'`;
// Glql::BaseController is a GraphqlController, with its authentication, its schema and its
// mutations). The gate took only `/api/graphql` for GraphQL: at `/api/glql` a fine-grained token's
// mutation on a project it does not reach, or an allowlist mutation the gate answers itself, was
// forwarded to GitLab unchecked, and in forward-auth it was an ordinary path outside the API,
// answered 200 (an Envoy line `POST /api/glql` with a client's X-Original-URI too).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { startTestGate, TOKENS as JOB_TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['update_ci_cd_setting'], project_id: 200 }] }
}
const update = (fullPath: string): string => `mutation { projectCiCdSettingsUpdate(input: { fullPath: "${fullPath}", keepLatestArtifact: true }) { errors } }`

test('/api/glql is GitLab\'s GraphQL: a fine-grained token is checked there as at /api/graphql', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const pat = { 'private-token': 'glpat-lib' }
  for (const path of ['/api/glql', '/api/glql.json', '//api//glql/', '/api/glql?project=acme/lib']) {
    const answer = await postGraphql(g.url, { query: update('other/tools') }, pat, path)
    assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${path}: ${answer.text}`)
  }
  assert.equal(g.upstream.length, 0, 'no mutation on other/tools reached GitLab')
  // The project the token reaches still goes through, on GitLab's own path.
  const allowed = await postGraphql(g.url, { query: update('acme/lib') }, pat, '/api/glql')
  assert.deepEqual(allowed.body, { data: { upstream: true } }, allowed.text)
  assert.equal(g.upstream.length, 1)
  assert.match(g.upstream[0]!.url, /^\/api\/glql/)
})

test('forward-auth: /api/glql is refused as GraphQL is, whatever X-Original-* the client sends', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_NON_API_JOB_TOKENS: 'deny' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const pat = { 'private-token': 'glpat-someone' }
  // nginx's auth_request: the original request in headers, on the proxy's own path.
  for (const [method, uri] of [['POST', '/api/glql'], ['GET', '/api/glql?query=mutation%7B%7D'], ['POST', '/api/glql.json']] as const) {
    const answer = await send(auth, 'GET', '/_job_token_gate', { ...pat, 'x-original-method': method, 'x-original-uri': uri })
    assert.equal(answer.status, 403, `${method} ${uri}: ${answer.text}`)
    assert.equal(answer.json().code, 'FORWARD_AUTH_GATE_ENDPOINT', `${method} ${uri}`)
  }
  // Envoy: the line is the request GitLab gets; a client's headers naming an allowed API request
  // are refused, a job token under a relative URL root the gate was not told of too.
  const job = { 'job-token': JOB_TOKENS.app }
  const spoof = { 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/100/packages' }
  for (const [line, code] of [['/api/glql', 'FORWARD_AUTH_GATE_ENDPOINT'], ['/gitlab/api/glql', 'FORWARD_AUTH_GATE_ENDPOINT']] as const) {
    const own = await send(auth, 'POST', line, job)
    assert.equal(own.status, 403, `${line}: ${own.text}`)
    assert.equal(own.json().code, code, line)
    const spoofed = await send(auth, 'POST', line, { ...job, ...spoof })
    assert.equal(spoofed.status, 403, `${line}: ${spoofed.text}`)
    assert.equal(spoofed.json().code, 'FORWARD_AUTH_UNTRUSTED', line)
  }
})
