// Regression: GraphQL's ID type takes an integer as well as a string (graphql-ruby's ID coerces
// `group(fullPath: 20)` and a variable `{"p": 20}` to the path "20"), and projectPath, groupPath
// and fullPath are IDs in GitLab's schema. The gate read a boundary path only from a string: an
// integer named no target, which passes whenever some scope holds the permission, so a token
// limited to group acme had `group(fullPath: 20)` forwarded where `group(fullPath: "20")` is refused.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

// Group 10 is `acme`, group 20 `other` (test/helpers/graphql-gate.ts); no group is named "20".
const TOKENS: Record<string, FakeToken> = {
  'glpat-acme': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_group', 'update_group', 'read_project'], group_id: 10 }] }
}
const pat = { 'private-token': 'glpat-acme' }

for (const schema of [false, true]) {
  test(`an integer boundary path is the path its digits spell (${schema ? 'with' : 'without'} the schema)`, async (t) => {
    const g = await startGraphqlGate(t, { tokens: TOKENS, schema })
    const cases: Array<[string, Record<string, unknown>]> = [
      ['{ group(fullPath: 20) { id } }', {}],
      ['query($p: ID!) { group(fullPath: $p) { id } }', { p: 20 }]
    ]
    // groupUpdate is not in the fixture schema: read without it.
    if (!schema) cases.push(['mutation { groupUpdate(input: {fullPath: 20, name: "x"}) { errors } }', {}], ['mutation($p: ID!) { groupUpdate(input: {fullPath: $p, name: "x"}) { errors } }', { p: 20 }])
    for (const [query, variables] of cases) {
      const answer = await postGraphql(g.url, { query, variables }, pat)
      assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${query}: ${answer.text}`)
      assert.match(answer.body.errors[0].message, /20 was not found/)
    }
    assert.equal(g.upstream.length, 0)
    // The group the token reaches, by its path, still goes through.
    const allowed = await postGraphql(g.url, { query: '{ group(fullPath: "acme") { id } }' }, pat)
    assert.deepEqual(allowed.body, { data: { upstream: true } }, allowed.text)
  })
}
