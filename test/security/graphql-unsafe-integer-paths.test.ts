// Regression: an integer boundary path is the path its digits spell to GitLab (graphql-ruby's ID
// coerces `group(fullPath: 9007199254740993)` to "9007199254740993"; Ruby's integers and JSON keep
// every digit). Past 2^53 the gate's readers lose digits (JSON.parse and graphql-js read a float):
// the gate checked the group "9007199254740992", which a token may reach, while GitLab looks up
// "9007199254740993". Such a path is now refused, GRAPHQL_DOCUMENT_INVALID, nothing forwarded.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-acme': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_group', 'read_project'], group_id: 10 }] }
}
const pat = { 'private-token': 'glpat-acme' }

test('an integer boundary path past 2^53 is refused: the gate cannot read its digits as GitLab does', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const cases: Array<[string, Record<string, unknown> | string]> = [
    ['{ group(fullPath: 9007199254740993) { id } }', {}],
    ['query($p: ID!) { group(fullPath: $p) { id } }', '{"p": 9007199254740993}'],
    ['query($p: ID!) { project(fullPath: $p) { id } }', '{"p": 12345678901234567890}']
  ]
  for (const [query, variables] of cases) {
    const answer = await postGraphql(g.url, { query, variables }, pat)
    assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_DOCUMENT_INVALID', `${query}: ${answer.text}`)
    assert.match(answer.body.errors[0].message, /past 2\^53/)
  }
  assert.equal(g.upstream.length, 0)
  // 2^53 - 1 and below are read exactly: the path its digits spell (no such group here).
  const safe = await postGraphql(g.url, { query: '{ group(fullPath: 9007199254740991) { id } }' }, pat)
  assert.equal(safe.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', safe.text)
  assert.match(safe.body.errors[0].message, /9007199254740991 was not found/)
})
