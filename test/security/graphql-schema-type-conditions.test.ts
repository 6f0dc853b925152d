// Regression: with GitLab's schema (GATE_GRAPHQL_SCHEMA), a field the gate's schema does not have
// is refused, but a fragment on a type it does not have was read without a type: nothing selected
// under it was checked. A newer GitLab than the saved schema (an interface added to Project, say)
// runs `... on NewInterface { runners { ... } }` on the project, so a token with Project: Read
// alone read its runners through the gate. Likewise a fragment on an object type the gate's
// schema does not list among a field's possible types (one that implements the interface in a
// newer GitLab) was never checked as a type, and with a schema that has no Subscription type the
// fields of a subscription were not read at all.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'read_vulnerability'], project_id: 200 }] }
}
const pat = { 'private-token': 'glpat-lib-reader' }

test('a fragment on a type the schema does not have is refused, not read untyped', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, schema: true })
  for (const query of [
    '{ project(fullPath: "acme/lib") { ... on ProjectInterface { runners { nodes { id } } } } }',
    '{ project(fullPath: "acme/lib") { ...F } } fragment F on ProjectInterface { runners { nodes { id } } }'
  ]) {
    const answer = await postGraphql(g.url, { query }, pat)
    assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_NOT_IN_CATALOG', `${query}: ${answer.text}`)
    assert.equal(answer.body.errors[0].extensions.refused, 'type ProjectInterface (not in the schema)')
  }
  // An operation type the schema lacks (the fixture has no Subscription): its fields are untyped too.
  const subscription = await postGraphql(g.url, { query: 'subscription { project(fullPath: "acme/lib") { runners { nodes { id } } } }' }, pat)
  assert.equal(subscription.body?.errors?.[0]?.extensions?.refused, 'field Subscription.project (not in the schema)', subscription.text)
  assert.equal(g.upstream.length, 0)
  // Fragments on types the schema has, the root type included, read as before.
  for (const query of ['{ ... on Query { project(fullPath: "acme/lib") { ... on Project { id } } } }', '{ project(fullPath: "acme/lib") { ...P } } fragment P on Project { name }']) {
    const answer = await postGraphql(g.url, { query }, pat)
    assert.deepEqual(answer.body, { data: { upstream: true } }, `${query}: ${answer.text}`)
  }
})

test('a fragment on an object type is checked as that type, where the schema does not list it among the field\'s types', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gate-schema-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  // An older schema: Issue does not implement NoteableInterface yet.
  writeFileSync(join(dir, 'schema.graphql'), [
    'type Query { project(fullPath: ID!): Project }',
    'type Project { id: ID! noteables: [NoteableInterface!] }',
    'interface NoteableInterface { id: ID }',
    'type Vulnerability implements NoteableInterface { id: ID title: String }',
    'type Issue { id: ID title: String }'
  ].join('\n'))
  const g = await startGraphqlGate(t, { tokens: TOKENS, env: { GATE_GRAPHQL_SCHEMA: join(dir, 'schema.graphql') } })
  const refused = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { noteables { ... on Issue { title } } } }' }, pat)
  assert.equal(refused.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', refused.text)
  assert.equal(refused.body.errors[0].extensions.refused, 'type Issue')
  assert.equal(g.upstream.length, 0)
  const allowed = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { noteables { ... on Vulnerability { title } } } }' }, pat)
  assert.deepEqual(allowed.body, { data: { upstream: true } }, allowed.text)
})
