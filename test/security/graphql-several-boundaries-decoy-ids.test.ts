// Regression: a mutation listed at a project or group boundary and at the user or the instance
// is checked by GitLab at the first boundary its boundary argument names, and where none is
// named, at the user or the instance alone (graphql-several-boundaries.test.ts). The gate kept
// every boundary whenever the arguments held another object's global ID, as it does for
// runnerUpdate's `id`, whose boundary GitLab finds; but a global ID written in any text argument
// counted too. So `title: "gid://gitlab/Issue/1"` let a token holding Snippet: Create at one
// project make a personal snippet, and a `description` or `name` holding one let a token
// holding Runner: Create, Member Role: Create or CD Application: Create at a group register an
// instance runner, make an instance-wide custom role or an application in an organization. Only
// the object of an `id` keeps every boundary now, whichever argument comes first; and a project
// named only in such an argument (`description: "gid://gitlab/Project/300"`) no longer stands
// for the boundary: the user or the instance is checked as well.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GraphqlCatalogIndex, describeTarget, explainGraphql, parseDocument, parseSchema } from '../../src/graphql/explain.ts'
import { loadGraphqlCatalog } from '../../src/graphql/load.ts'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-tools': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['create_snippet', 'update_snippet'], project_id: 300 }] },
  'glpat-other': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['create_runner', 'update_runner', 'create_member_role', 'create_cd_application'], group_id: 20 }] }
}

const SNIPPET = 'mutation($input: CreateSnippetInput!) { createSnippet(input: $input) { errors } }'
const RUNNER = 'mutation($input: RunnerCreateInput!) { runnerCreate(input: $input) { errors } }'
const ROLE = 'mutation($input: MemberRoleCreateInput!) { memberRoleCreate(input: $input) { errors } }'
const APPLICATION = 'mutation($input: CdApplicationCreateInput!) { cdApplicationCreate(input: $input) { errors } }'

test('a global ID in a text argument does not make a mutation that names nothing checkable at a project or group', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const refused: Array<[string, string, Record<string, unknown>, string]> = [
    ['glpat-tools', SNIPPET, { title: 'gid://gitlab/Issue/1', visibilityLevel: 'private' }, 'User'],
    ['glpat-tools', SNIPPET, { title: 'x', description: 'gid://gitlab/Project/300', visibilityLevel: 'private' }, 'User'],
    ['glpat-other', RUNNER, { runnerType: 'INSTANCE_TYPE', description: 'gid://gitlab/Ci::Runner/5' }, 'Instance'],
    ['glpat-other', ROLE, { name: 'gid://gitlab/Issue/1', baseAccessLevel: 'GUEST' }, 'Instance'],
    ['glpat-other', APPLICATION, { name: 'gid://gitlab/Issue/1', organizationId: 'gid://gitlab/Organizations::Organization/1' }, 'Instance']
  ]
  for (const [token, query, input, boundary] of refused) {
    const answer = await postGraphql(g.url, { query, variables: { input } }, { 'private-token': token })
    assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${token} ${JSON.stringify(input)}: ${answer.text}`)
    assert.equal(answer.body.errors[0].extensions.boundary, boundary)
  }
  assert.equal(g.upstream.length, 0)
  // The object of an `id` is GitLab's to place, a global ID written before it or not.
  const allowed: Array<[string, string, Record<string, unknown>]> = [
    ['glpat-tools', 'mutation($input: UpdateSnippetInput!) { updateSnippet(input: $input) { errors } }', { id: 'gid://gitlab/ProjectSnippet/5', title: 'x' }],
    ['glpat-tools', 'mutation($input: UpdateSnippetInput!) { updateSnippet(input: $input) { errors } }', { title: 'gid://gitlab/Issue/1', id: 'gid://gitlab/ProjectSnippet/5' }],
    ['glpat-other', 'mutation($input: RunnerUpdateInput!) { runnerUpdate(input: $input) { errors } }', { description: 'gid://gitlab/Issue/1', id: 'gid://gitlab/Ci::Runner/5' }]
  ]
  for (const [token, query, input] of allowed) {
    const answer = await postGraphql(g.url, { query, variables: { input } }, { 'private-token': token })
    assert.deepEqual(answer.body, { data: { upstream: true } }, `${token} ${JSON.stringify(input)}: ${answer.text}`)
  }
  assert.equal(g.upstream.length, allowed.length)
})

test('with a schema, the same: a root field naming no boundary argument is checked where GitLab checks it', () => {
  const index = new GraphqlCatalogIndex(loadGraphqlCatalog())
  const schema = parseSchema(`
    type Query { runner(id: ID!): CiRunner }
    type CiRunner { id: ID! }
    input CreateSnippetInput { projectPath: ID, title: String!, description: String }
    input RunnerUpdateInput { id: ID!, description: String, associatedProjects: [ID!] }
    type Payload { errors: [String!]! }
    type Mutation { createSnippet(input: CreateSnippetInput!): Payload, runnerUpdate(input: RunnerUpdateInput!): Payload }
  `)
  const needs = (text: string, name: string): string[] => {
    const explained = explainGraphql(parseDocument(text), index, { schema })
    return explained.operations[0]!.touches.filter(t => t.name === name).map(t => `${t.permissions.map(p => `${p.permission}@${p.boundary}`).join(' ')} ${describeTarget(t.target)}`)
  }
  assert.deepEqual(needs('mutation { createSnippet(input: {title: "gid://gitlab/Issue/1"}) { errors } }', 'createSnippet'), ['create_snippet@User no project or group in the arguments'])
  assert.deepEqual(needs('mutation { createSnippet(input: {title: "x", description: "gid://gitlab/Project/300"}) { errors } }', 'createSnippet'), [
    'create_snippet@Project project 300, from input.description',
    'create_snippet@User no project or group in the arguments'
  ])
  assert.deepEqual(needs('mutation { createSnippet(input: {projectPath: "other/tools", title: "gid://gitlab/Project/200"}) { errors } }', 'createSnippet'), [
    'create_snippet@Project project "other/tools", from input.projectPath',
    'create_snippet@Project project 200, from input.title'
  ])
  // runnerUpdate's associatedProjects are no boundary: the runner of its `id` is checked as well.
  assert.deepEqual(needs('mutation { runnerUpdate(input: {description: "gid://gitlab/Issue/1", id: "gid://gitlab/Ci::Runner/5", associatedProjects: ["gid://gitlab/Project/300"]}) { errors } }', 'runnerUpdate'), [
    'update_runner@Project project 300, from input.associatedProjects[0]',
    'update_runner@Project update_runner@Group update_runner@Instance Ci::Runner 5 (its project or group), from input.id'
  ])
  assert.deepEqual(needs('{ runner(id: "gid://gitlab/Ci::Runner/5") { id } }', 'Query.runner'), ['read_runner@Project read_runner@Group read_runner@Instance Ci::Runner 5 (its project or group), from id'])
})
