// Finding: the gate parsed and validated every document that names its fields, whatever its size,
// before it looked at the caller: the complexity bound counts only what runs, so a 1 MiB document
// of 330,000 one-letter fields in a fragment no operation spreads was parsed and validated whole,
// a second of CPU for a request without any token, and its 160 MB syntax tree was held while
// GitLab was asked about a made-up token. GitLab runs no query over 10,000 characters
// (GraphqlController::MAX_QUERY_SIZE, a batch's queries together). The queries of a reading that
// names the gate's fields are now counted in characters before anything else walks them: more
// than 10,000 is 400 GRAPHQL_DOCUMENT_TOO_LARGE, nothing parsed
// (admin-graphql-characters-bounded.test.ts counts them as Ruby does, and bounds one long string).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { classifyGraphql } from '../../src/admin/graphql.ts'

const anyone = { 'private-token': 'glpat-made-up-by-anyone-0000', 'content-type': 'application/json' }
const read = 'query A { project(fullPath: "acme/lib") { jobTokenPermissions { jobTokenPoliciesEnabled } } }'

test('admin GraphQL: a document of more fields than GitLab runs is refused unparsed', async t => {
  const g = await adminGate(t)
  const fields = Array.from({ length: 330_000 }, () => 'id').join(' ')
  for (const headers of [anyone, { 'content-type': 'application/json' }]) {
    const res = await send(g.url, 'POST', '/api/graphql', headers, JSON.stringify({ query: `${read} fragment F on Project { ${fields} }`, operationName: 'A' }))
    assert.equal(res.status, 400, res.text.slice(0, 300))
    assert.equal(res.json().code, 'GRAPHQL_DOCUMENT_TOO_LARGE')
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
  assert.equal(g.gitlab.calls.project, 0, 'no project was looked up')
})

test('admin GraphQL: a batch\'s documents count together', () => {
  // Each within the bound (70 fields, 5,500 characters), two over it: GitLab adds a batch's queries up too.
  const op = { query: `{ ${Array.from({ length: 70 }, (_, i) => `p${i}: project(fullPath: "a/b") { jobTokenPermissions { jobTokenPoliciesEnabled } }`).join(' ')} }` }
  const one = classifyGraphql(Buffer.from(JSON.stringify([op])))
  assert.equal(one.kind === 'refused' && one.code, 'GRAPHQL_MIXED_OPERATION')
  const two = classifyGraphql(Buffer.from(JSON.stringify([op, op])))
  assert.equal(two.kind === 'refused' && two.code, 'GRAPHQL_DOCUMENT_TOO_LARGE')
})

test('admin GraphQL: a document within 10,000 characters runs, comments and long names included', async t => {
  const g = await adminGate(t)
  // Within GitLab's 10,000 characters (admin-graphql-characters-bounded.test.ts).
  const comment = `# ${'c'.repeat(5_000)}\n`
  const res = await send(g.url, 'POST', '/api/graphql', { ...anyone, 'private-token': 'glpat-maintainer-of-lib' },
    JSON.stringify({ query: `${comment}${read.replace('query A', `query A${'n'.repeat(3_000)}`)}` }))
  assert.equal(res.status, 200, res.text.slice(0, 300))
  assert.equal(res.json().errors, undefined, res.text.slice(0, 300))
})
