// Finding: the gate took GitLab's GraphQL for its own only under the configured relative URL
// root. With GitLab under a root the gate was not given (`/gitlab`, GATE_RELATIVE_URL_ROOT unset
// or wrong), `/gitlab/api/graphql` and `/gitlab/api/glql` were paths outside the API: a
// fine-grained token's mutation on a project it does not reach, or GitLab's own allowlist
// mutation, which the gate answers from its store, was forwarded to GitLab unchecked. GraphQL
// outside the configured root is refused now, in both modes.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { startTestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['update_ci_cd_setting'], project_id: 200 }] }
}
const update = (fullPath: string): string => `mutation { projectCiCdSettingsUpdate(input: { fullPath: "${fullPath}", keepLatestArtifact: true }) { errors } }`
const allowlist = 'mutation { ciJobTokenScopeAddProject(input: { projectPath: "acme/lib", targetProjectPath: "other/tools" }) { errors } }'

test('GraphQL under a root the gate was not given is refused, not forwarded', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const pat = { 'private-token': 'glpat-lib' }
  for (const path of ['/gitlab/api/graphql', '/gitlab/api/glql', '/gitlab/api/graphql.json', '//gitlab//%61pi/graphql/', '/a/b/api/graphql?x=1']) {
    for (const query of [update('other/tools'), allowlist]) {
      const answer = await postGraphql(g.url, { query }, pat, path)
      assert.equal(answer.status, 403, `${path}: ${answer.text}`)
      assert.equal(answer.body.code, 'API_PATH_OUTSIDE_ROOT', path)
    }
  }
  const get = await send(g.url, 'GET', `/gitlab/api/graphql?query=${encodeURIComponent(allowlist)}`, pat)
  assert.equal(get.status, 403, get.text)
  assert.equal(g.upstream.length, 0, 'nothing reached GitLab')
  // At the gate's own root, GraphQL is checked as before.
  const allowed = await postGraphql(g.url, { query: update('acme/lib') }, pat)
  assert.deepEqual(allowed.body, { data: { upstream: true } }, allowed.text)
})

test('with a root configured, GraphQL outside it is refused and inside it checked', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, env: { GATE_RELATIVE_URL_ROOT: '/gitlab' } })
  const pat = { 'private-token': 'glpat-lib' }
  const outside = await postGraphql(g.url, { query: update('other/tools') }, pat, '/api/graphql')
  assert.equal(outside.status, 403, outside.text)
  assert.equal(outside.body.code, 'API_PATH_OUTSIDE_ROOT')
  assert.equal(g.upstream.length, 0)
  // Inside it, GraphQL is GitLab's and goes on (the fake GitLab serves no root, so the token's
  // lookup there finds nothing, which GitLab would refuse itself).
  const inside = await postGraphql(g.url, { query: update('acme/lib') }, pat, '/gitlab/api/graphql')
  assert.deepEqual(inside.body, { data: { upstream: true } }, inside.text)
  assert.ok(g.upstream.some(call => call.url.startsWith('/gitlab/api/graphql')))
})

test('forward-auth refuses it too', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  for (const uri of ['/gitlab/api/graphql', '/gitlab/api/glql.json']) {
    const answer = await send(auth, 'GET', '/_job_token_gate', { 'private-token': 'glpat-someone', 'x-original-method': 'POST', 'x-original-uri': uri, 'x-original-content-length': '0' })
    assert.equal(answer.status, 403, `${uri}: ${answer.text}`)
    assert.equal(answer.json().code, 'FORWARD_AUTH_GATE_ENDPOINT', uri)
  }
  // Other paths outside the API, as before.
  assert.equal((await send(auth, 'GET', '/_job_token_gate', { 'private-token': 'glpat-someone', 'x-original-method': 'GET', 'x-original-uri': '/gitlab/acme/lib' })).status, 200)
})
