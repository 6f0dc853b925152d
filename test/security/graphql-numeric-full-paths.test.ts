// Regression: a full path of digits is a path to GitLab's GraphQL (`group(fullPath: "10")` finds
// the top-level group, or user namespace, named "10": Routable.find_by_full_path), while GitLab's
// REST API reads a segment of digits as an id (`GET /groups/10` is the group whose id is 10). The
// gate looked the path up over REST, so a fine-grained token limited to the group with id 10
// could read or change whichever group is named "10".

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

// Group 10 is `acme` (test/helpers/graphql-gate.ts).
const TOKENS: Record<string, FakeToken> = {
  'glpat-acme': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_group', 'update_group'], group_id: 10 }] }
}
const pat = { 'private-token': 'glpat-acme' }

test('a full path of digits is not taken for the group whose id those digits are', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  for (const query of [
    '{ group(fullPath: "10") { id } }',
    'query($p: ID!) { group(fullPath: $p) { id } }',
    // A `fullPath` of a field that does not say what it names: looked up as a namespace.
    'mutation { groupUpdate(input: {fullPath: "10", name: "x"}) { errors } }',
    // Leading zeros: an id to the REST API, a path to GraphQL.
    '{ group(fullPath: "010") { id } }'
  ]) {
    const answer = await postGraphql(g.url, { query, variables: { p: '10' } }, pat)
    assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${query}: ${answer.text}`)
    assert.match(answer.body.errors[0].message, /was not found/)
  }
  assert.equal(g.upstream.length, 0)
  // The same group by its path still goes through.
  for (const query of ['{ group(fullPath: "acme") { id } }', 'mutation { groupUpdate(input: {fullPath: "acme", name: "x"}) { errors } }']) {
    const answer = await postGraphql(g.url, { query }, pat)
    assert.deepEqual(answer.body, { data: { upstream: true } }, `${query}: ${answer.text}`)
  }
})
