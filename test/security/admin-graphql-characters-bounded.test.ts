// Finding: the bound on documents that name the gate's fields counted graphql-js tokens, and a
// token can be as long as the body: a 1 MiB string argument or comment is one token, so such a
// document was escaped, lexed twice, parsed and validated whole, about a third of a second of CPU
// a request (twice that where the URL gives the body two readings), with no token at all, and
// then answered by the gate although GitLab runs no query over 10,000 characters. The queries of
// a reading that names the gate's fields are now counted first in characters, as GitLab counts
// them (Ruby's String#size: code points, a batch's queries together): more than 10,000 is 400
// GRAPHQL_DOCUMENT_TOO_LARGE before anything escapes, lexes or parses them.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { classifyGraphql } from '../../src/admin/graphql.ts'

const anyone = { 'private-token': 'glpat-made-up-by-anyone-0000', 'content-type': 'application/json' }
const read = 'query A { project(fullPath: "acme/lib") { jobTokenPermissions { jobTokenPoliciesEnabled } } }'

test('admin GraphQL: a document of few tokens but more characters than GitLab runs is refused unparsed', async t => {
  const g = await adminGate(t)
  const big = 1_000_000
  for (const query of [
    `${read} query B { project(fullPath: "${'a'.repeat(big)}") { id } }`,
    `# ${'c'.repeat(big)}\n${read}`,
    `${read} query B { project(fullPath: """${'b\n'.repeat(big / 4)}""") { id } }`
  ]) {
    for (const headers of [anyone, { 'content-type': 'application/json' }]) {
      const res = await send(g.url, 'POST', '/api/graphql', headers, JSON.stringify({ query, operationName: 'A' }))
      assert.equal(res.status, 400, res.text.slice(0, 300))
      assert.equal(res.json().code, 'GRAPHQL_DOCUMENT_TOO_LARGE')
    }
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
  assert.equal(g.gitlab.calls.project, 0, 'no project was looked up')
})

test('admin GraphQL: characters are counted as GitLab counts them, an astral one once', async t => {
  const g = await adminGate(t)
  // 9,000 emoji are 18,000 UTF-16 code units but 9,000 characters to GitLab: within its 10,000.
  const res = await send(g.url, 'POST', '/api/graphql', { ...anyone, 'private-token': 'glpat-maintainer-of-lib' },
    JSON.stringify({ query: `# ${'😀'.repeat(9_000)}\n${read}` }))
  assert.equal(res.status, 200, res.text.slice(0, 300))
  assert.equal(res.json().errors, undefined, res.text.slice(0, 300))
  // One character more than 10,000 is refused.
  const emoji = (n: number): string => `# ${'😀'.repeat(n)}\n${read}`
  const over = emoji(10_000 - read.length - 2)
  assert.equal([...over].length, 10_001)
  const refused = classifyGraphql(Buffer.from(JSON.stringify({ query: over })))
  assert.equal(refused.kind === 'refused' && refused.code, 'GRAPHQL_DOCUMENT_TOO_LARGE')
  assert.equal(classifyGraphql(Buffer.from(JSON.stringify({ query: emoji(10_000 - read.length - 3) }))).kind, 'gate')
})

test('admin GraphQL: a batch\'s characters count together, and a document without the gate\'s fields is left to GitLab', () => {
  const op = { query: `${read} # ${'c'.repeat(5_000)}` }
  const two = classifyGraphql(Buffer.from(JSON.stringify([op, { query: `{ a } # ${'c'.repeat(5_000)}` }])))
  assert.equal(two.kind === 'refused' && two.code, 'GRAPHQL_DOCUMENT_TOO_LARGE')
  assert.equal(classifyGraphql(Buffer.from(JSON.stringify({ query: `{ a } # ${'c'.repeat(1_000_000)}` }))).kind, 'gitlab')
})
