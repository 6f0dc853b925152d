// Regression: a POST to /api/graphql without a Content-Type is a form to GitLab only through
// Rack::MethodOverride, which parses it with Rack's #POST before Rails (ActionDispatch's own
// form_data? wants a form type). The gate read such a body as a form alone, merged under the
// URL's parameters: a form body `_json[][query]=` (a batch, which wins over `query`) or
// `variables[...]=` covered the URL's query, and the URL's query alone, which GitLab runs
// without that middleware, was never checked. The URL's reading is now one more reading.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] },
  'glpat-legacy': { userId: 8 }
}
const OTHER = '{ project(fullPath: "other/tools") { id } }'
const OWN = '{ project(fullPath: "acme/lib") { id } }'
const q = encodeURIComponent

/** POSTs `body` with no Content-Type (fetch would add text/plain to a string). */
async function untyped (url: string, path: string, token: string, body: string): Promise<{ status: number, body: any }> {
  const res = await fetch(url + path, { method: 'POST', headers: { 'private-token': token }, body: new TextEncoder().encode(body) })
  return { status: res.status, body: await res.json() }
}

test('an untyped form body cannot cover the URL\'s query: the URL\'s reading alone is checked too', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const cases: Array<[string, string, string]> = [
    ['a batch in the body, over the URL\'s query', `/api/graphql?query=${q(OTHER)}`, `_json[][query]=${q(OWN)}`],
    ['variables in the body, over the defaults the URL\'s query runs with', `/api/graphql?query=${q('query($p: ID = "other/tools") { project(fullPath: $p) { id } }')}`, 'variables[p]=acme/lib']
  ]
  for (const [name, path, body] of cases) {
    const answer = await untyped(g.url, path, 'glpat-lib-reader', body)
    assert.equal(answer.status, 200, name)
    assert.equal(answer.body.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', name)
    assert.equal(answer.body.errors[0].extensions.target, 'project other/tools', name)
  }
  assert.equal(g.upstream.length, 0, 'nothing forwarded')
  // The form alone (no URL parameters) is read as before, and forwarded as sent.
  const form = `query=${q(OWN)}`
  const own = await untyped(g.url, '/api/graphql', 'glpat-lib-reader', form)
  assert.deepEqual(own.body, { data: { upstream: true } })
  assert.equal(g.upstream.length, 1)
  assert.equal(g.upstream[0]!.body.toString(), form)
  assert.equal(g.upstream[0]!.headers['content-type'], undefined)
})

test('an allowlist mutation in the URL under an untyped form body holding a batch is refused: GitLab\'s stack runs the batch', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const mutation = 'mutation { ciJobTokenScopeAddProject(input: {projectPath: "acme/lib", targetProjectPath: "other/tools"}) { errors } }'
  const answer = await untyped(g.url, `/api/graphql?query=${q(mutation)}`, 'glpat-legacy', `_json[][query]=${q('{ a }')}`)
  assert.equal(answer.status, 400)
  assert.equal(answer.body.code, 'GRAPHQL_AMBIGUOUS_REQUEST')
  assert.deepEqual(g.upstream, [], 'nothing asked of or forwarded to GitLab')
})
