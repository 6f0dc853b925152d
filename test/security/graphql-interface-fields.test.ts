// Regression: with GitLab's schema, a field the catalog lists on an object type
// (`Issue.createNoteEmail`, which needs Work Item: Create) was matched by the type it was
// selected on. Selected through an interface that declares it (`... on NoteableWithEmail {
// createNoteEmail }`, or a field returning the interface), its parent type is the interface, and
// `NoteableWithEmail.createNoteEmail` is on no page: the gate checked nothing for it, while
// GitLab runs the field of the object it resolves, `Issue.createNoteEmail`, and requires its
// permission. Such a field is now matched on each object type it may run on: the enclosing field's
// types, narrowed by the fragments around it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'read_work_item', 'read_runner'], project_id: 200 }] },
  'glpat-lib-writer': { userId: 8, scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'read_work_item', 'create_work_item'], project_id: 200 }] }
}

const SCHEMA = [
  'type Query { project(fullPath: ID!): Project group(fullPath: ID!): Group }',
  'interface NoteableWithEmail { id: ID! createNoteEmail: String }',
  'interface RunnerOwner { id: ID! runners: CiRunnerConnection }',
  'type Project implements RunnerOwner { id: ID! runners: CiRunnerConnection issue(iid: String): Issue workItem(iid: String): WorkItem noteables: [NoteableWithEmail] }',
  'type Group implements RunnerOwner { id: ID! runners: CiRunnerConnection }',
  'type CiRunner { id: ID! }',
  'type CiRunnerConnection { nodes: [CiRunner] }',
  'type Issue implements NoteableWithEmail { id: ID! title: String createNoteEmail: String }',
  'type WorkItem implements NoteableWithEmail { id: ID! title: String createNoteEmail: String }'
].join('\n')

test('a field selected through an interface needs the permission of the object type it runs on', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gate-schema-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'schema.graphql'), SCHEMA)
  const g = await startGraphqlGate(t, { tokens: TOKENS, env: { GATE_GRAPHQL_SCHEMA: join(dir, 'schema.graphql') } })
  const queries = [
    '{ project(fullPath: "acme/lib") { issue(iid: "1") { ... on NoteableWithEmail { createNoteEmail } } } }',
    '{ project(fullPath: "acme/lib") { workItem(iid: "1") { ...E } } } fragment E on NoteableWithEmail { e: createNoteEmail }',
    '{ project(fullPath: "acme/lib") { issue(iid: "1") { title ...T } workItem(iid: "1") { ...T } } } fragment T on WorkItem { title ... on NoteableWithEmail { createNoteEmail } }',
    '{ project(fullPath: "acme/lib") { noteables { id createNoteEmail } } }'
  ]
  for (const query of queries) {
    const answer = await postGraphql(g.url, { query }, { 'private-token': 'glpat-lib-reader' })
    assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${query}: ${answer.text}`)
    assert.match(answer.body.errors[0].extensions.refused, /^field (Issue|WorkItem)\.createNoteEmail$/)
  }
  assert.equal(g.upstream.length, 0)
  for (const query of queries) {
    const answer = await postGraphql(g.url, { query }, { 'private-token': 'glpat-lib-writer' })
    assert.deepEqual(answer.body, { data: { upstream: true } }, `${query}: ${answer.text}`)
  }
  // Only the object types the selection can run on: a project's runners through RunnerOwner
  // need Runner: Read at the project, not Group.runners' group boundary.
  const runners = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { ... on RunnerOwner { runners { nodes { id } } } } }' }, { 'private-token': 'glpat-lib-reader' })
  assert.deepEqual(runners.body, { data: { upstream: true } }, runners.text)
  const denied = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { ... on RunnerOwner { runners { nodes { id } } } } }' }, { 'private-token': 'glpat-lib-writer' })
  assert.equal(denied.body?.errors?.[0]?.extensions?.refused, 'field Project.runners', denied.text)
})
