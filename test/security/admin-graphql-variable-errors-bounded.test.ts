// Finding: graphql-js's errors for a variable it cannot coerce quote the variable's value whole,
// once per problem: an input object with 50 fields its type does not have, beside one 900 KB
// string, was 50 messages each holding the string. The gate runs a document naming its fields
// (coercing its variables) for any token GitLab does not refuse at once, a made-up one included,
// so a 900 KB request was answered with 45 MB, which the gate held whole until the client read
// it. The answer's error messages are cut to 1,000 characters, then their length, as its
// validation problems are.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

const anyone = { 'private-token': 'glpat-made-up-by-anyone-0000', 'content-type': 'application/json' }

test('admin GraphQL: a variable\'s long value is not quoted once per problem', async t => {
  const g = await adminGate(t)
  const value: Record<string, unknown> = { projectPath: 'acme/lib', clientMutationId: 'c'.repeat(900_000) }
  for (let i = 0; i < 60; i++) value[`unknown${i}`] = 1
  const res = await send(g.url, 'POST', '/api/graphql', anyone, JSON.stringify({
    query: 'mutation($v: CiJobTokenScopeRemoveGroupInput!) { ciJobTokenScopeRemoveGroup(input: $v) { errors } }',
    variables: { v: value }
  }))
  assert.equal(res.status, 200, res.text.slice(0, 300))
  assert.ok(res.text.length < 100_000, `an answer of ${res.text.length} bytes`)
  const errors = res.json().errors as Array<{ message: string }>
  assert.ok(errors.length >= 50, `${errors.length} errors`)
  assert.match(errors[0]!.message, /^Variable "\$v" got invalid value \{ .*\.\.\. \(\d+ characters\)$/)
  for (const error of errors) assert.ok(error.message.length < 1100, `a message of ${error.message.length} characters`)
  assert.equal(g.seen.length, 0)
})
