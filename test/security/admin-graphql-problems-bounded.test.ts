// Finding: the configuration API answered a GraphQL document's validation problems with
// graphql-js's messages whole, and graphql-js quotes the document's names whole, some once per
// operation: a fragment using `$<900 KB name>` spread in 100 operations that do not define it is
// a hundred messages naming it (NoUndefinedVariables). The gate answers such a document before
// asking GitLab anything, so a 900 KB request with any made-up token was answered with 90 MB,
// which the gate held whole until the client read it. Each message is now cut to 1,000
// characters, then its length.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

const anyone = { 'private-token': 'glpat-made-up-by-anyone-0000', 'content-type': 'application/json' }

test('admin GraphQL: a long name graphql-js names in every operation is answered short', async t => {
  const g = await adminGate(t)
  // Within GitLab's 10,000 characters, the name 7,000 of them: unquoted, 700 KB of messages.
  const name = 'v' + 'x'.repeat(7_000)
  const operations = Array.from({ length: 100 }, (_, i) => `mutation O${i} { ...F }`).join(' ')
  const res = await send(g.url, 'POST', '/api/graphql', anyone,
    JSON.stringify({ query: `fragment F on Mutation { ciJobTokenScopeRemoveGroup(input: $${name}) { errors } } ${operations}` }))
  assert.equal(res.status, 200, res.text.slice(0, 300))
  assert.ok(res.text.length < 200_000, `an answer of ${res.text.length} bytes`)
  const errors = res.json().errors as Array<{ message: string }>
  assert.ok(errors.length >= 100, `${errors.length} problems`)
  assert.match(errors[0]!.message, /^Variable "\$vx+\.\.\. \(\d+ characters\)$/)
  for (const error of errors) assert.ok(error.message.length < 1100, `a message of ${error.message.length} characters`)
  // Nothing reached GitLab: the document was answered from its validation alone.
  assert.equal(g.seen.length, 0)
})

test('admin GraphQL: GitLab fields beside the gate\'s, with long names, are refused with a short message', async t => {
  const g = await adminGate(t)
  const fields = Array.from({ length: 2 }, (_, i) => `f${i}${'y'.repeat(4_000)}`).join(' ')
  const res = await send(g.url, 'POST', '/api/graphql', anyone,
    JSON.stringify({ query: `mutation { ciJobTokenScopeRemoveGroup(input: {projectPath: "acme/lib", targetGroupPath: "g"}) { errors } ${fields} }` }))
  assert.equal(res.status, 400, res.text.slice(0, 300))
  assert.equal(res.json().code, 'GRAPHQL_MIXED_OPERATION')
  assert.ok(res.text.length < 4_000, `an answer of ${res.text.length} bytes`)
})
