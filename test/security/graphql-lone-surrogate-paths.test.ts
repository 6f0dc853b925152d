// Regression: a path with a lone surrogate (`"\ud800"` in JSON variables, which JSON.parse keeps
// and graphql-js's own strings refuse) failed the lookup of its project (encodeURIComponent
// throws on it): the gate answered 500 GATE_INTERNAL_ERROR and logged the failure as its own.
// No project or group of GitLab's has such a path: it is a target not found, refused to a token
// whose selected scopes would need it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-acme': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'read_group'], group_id: 10 }] }
}

test('a path with a lone surrogate is a target not found, not a failure of the gate', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  for (const [query, p] of [
    ['query($p: ID!) { project(fullPath: $p) { id } }', 'acme/\ud800'],
    ['query($p: ID!) { group(fullPath: $p) { id } }', '\udc00acme'],
    ['query($p: ID!) { project(fullPath: $p) { id } }', 'acme/lib\ud83d']
  ] as const) {
    const answer = await postGraphql(g.url, { query, variables: { p } }, { 'private-token': 'glpat-acme' })
    assert.equal(answer.status, 200, answer.text)
    assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', answer.text)
    assert.match(answer.body.errors[0].message, /was not found/)
  }
  assert.equal(g.upstream.length, 0)
  // A path with a well-formed pair is looked up as any other (none such exists here).
  const pair = await postGraphql(g.url, { query: 'query($p: ID!) { project(fullPath: $p) { id } }', variables: { p: 'acme/\ud83d\ude00' } }, { 'private-token': 'glpat-acme' })
  assert.match(pair.body?.errors?.[0]?.message ?? '', /was not found/, pair.text)
})
