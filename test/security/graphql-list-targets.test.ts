// Regression: the gate read the projects and groups a field's arguments name from strings and
// input objects, never from lists. GitLab takes no boundary from a list, but an operation may
// act on each project a list names, beyond its boundary: runnerUpdate's `associatedProjects`
// assigns the runner to every project listed, checked at the runner alone (where
// runnerAssignToProject, for one project, needs Runner: Assign at that project). A token limited
// to group acme had a runner assigned to other/tools (300) forwarded. Lists are read now, global
// IDs, input objects and `fullPaths`, `projectPaths`, `groupPaths` in them, bounded by the same
// eight targets a field's arguments may name.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-acme': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['update_runner', 'read_runner'], group_id: 10 }] },
  'glpat-all': { userId: 7, scopes: [{ access: 'all_memberships', permissions: ['update_runner'] }] }
}
const UPDATE = 'mutation($input: RunnerUpdateInput!) { runnerUpdate(input: $input) { errors } }'
const runner = 'gid://gitlab/Ci::Runner/5'

test('the projects a list names are checked: a runner is not assigned past the token\'s group', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const pat = { 'private-token': 'glpat-acme' }
  for (const associatedProjects of [
    ['gid://gitlab/Project/300'],
    ['gid://gitlab/Project/100', 'gid://gitlab/Project/300'],
    // Nested lists and input objects inside lists are read too.
    [['gid://gitlab/Project/300']]
  ]) {
    const answer = await postGraphql(g.url, { query: UPDATE, variables: { input: { id: runner, associatedProjects } } }, pat)
    assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${JSON.stringify(associatedProjects)}: ${answer.text}`)
    assert.equal(answer.body.errors[0].extensions.target, 'project 300')
    // Written in the document: the same.
    const literal = `mutation { runnerUpdate(input: {id: "${runner}", associatedProjects: ${JSON.stringify(associatedProjects)}}) { errors } }`
    const inDocument = await postGraphql(g.url, { query: literal }, pat)
    assert.equal(inDocument.body?.errors?.[0]?.extensions?.target, 'project 300', `${literal}: ${inDocument.text}`)
  }
  for (const input of [{ items: [{ projectPath: 'other/tools' }] }, { fullPaths: ['acme/lib', 'other/tools'] }, { groupPaths: ['other'] }]) {
    const answer = await postGraphql(g.url, { query: UPDATE, variables: { input: { id: runner, ...input } } }, pat)
    assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${JSON.stringify(input)}: ${answer.text}`)
    assert.match(answer.body.errors[0].extensions.target, /other/)
  }
  assert.equal(g.upstream.length, 0)
  // Projects of the token's group, and a runner alone, go on to GitLab.
  for (const input of [{ id: runner, associatedProjects: ['gid://gitlab/Project/100', 'gid://gitlab/Project/200'] }, { id: runner, tagList: ['docker'] }]) {
    const answer = await postGraphql(g.url, { query: UPDATE, variables: { input } }, pat)
    assert.deepEqual(answer.body, { data: { upstream: true } }, `${JSON.stringify(input)}: ${answer.text}`)
  }
  assert.equal(g.upstream.length, 2)
})

test('a list naming more projects than a field\'s arguments may is refused, not checked at each', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const pat = { 'private-token': 'glpat-all' }
  const projects = (n: number): string[] => Array.from({ length: n }, (_, i) => `gid://gitlab/Project/${1000 + i}`)
  const many = await postGraphql(g.url, { query: UPDATE, variables: { input: { id: runner, associatedProjects: projects(9) } } }, pat)
  assert.equal(many.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_DOCUMENT_INVALID', many.text)
  assert.match(many.body.errors[0].message, /name more than 8 projects, groups or namespaces/)
  // The same project many times is one target; eight are checked.
  for (const associatedProjects of [projects(8), Array(5000).fill('gid://gitlab/Project/1000')]) {
    const answer = await postGraphql(g.url, { query: UPDATE, variables: { input: { id: runner, associatedProjects } } }, pat)
    assert.deepEqual(answer.body, { data: { upstream: true } }, answer.text)
  }
})
