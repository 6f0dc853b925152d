// Regression: a mutation the catalog lists at a project or group boundary and at the user or the
// instance (createSnippet: Project and User; runnerCreate: Project, Group and Instance;
// memberRoleCreate: Group and Instance) was allowed wherever any of its boundaries was held. GitLab
// checks such a mutation at the first boundary, in the order project, group, user, instance, that
// its arguments name (GranularTokenAuthorization#find_matching_directive), so a project or group
// named takes its own boundary and the user or instance entry counts only without one. A token
// holding Snippet: Create for the user's own snippets had a snippet created in other/tools
// forwarded, one holding Runner: Create at the instance a project runner registered in
// other/tools, one holding Member Role: Create at the instance a custom role made in group other.
// The other way round too: with neither a project nor a group named, GitLab's project and group
// entries find no boundary and the user or instance entry decides, so a token holding Snippet:
// Create at one project had a personal snippet created, one holding Runner: Create at a group an
// instance runner registered, one holding CD Application: Create at a group an application made
// in an organization (GitLab checks it at the instance).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GraphqlCatalogIndex, explainGraphql, parseDocument, parseSchema } from '../../src/graphql/explain.ts'
import { loadGraphqlCatalog } from '../../src/graphql/load.ts'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-own-snippets': { userId: 7, scopes: [{ access: 'user', permissions: ['create_snippet'] }] },
  'glpat-tools-snippets': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['create_snippet'], project_id: 300 }] },
  'glpat-instance': { userId: 7, scopes: [{ access: 'instance', permissions: ['create_runner', 'update_runner', 'create_member_role'] }] },
  'glpat-other': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['create_runner', 'create_member_role', 'create_cd_application'], group_id: 20 }] }
}

const SNIPPET = 'mutation($input: CreateSnippetInput!) { createSnippet(input: $input) { errors } }'
const RUNNER = 'mutation($input: RunnerCreateInput!) { runnerCreate(input: $input) { errors } }'
const ROLE = 'mutation($input: MemberRoleCreateInput!) { memberRoleCreate(input: $input) { errors } }'

test('a project or group the arguments name is checked at its own boundary; without one, the user or the instance', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const refused: Array<[string, string, Record<string, unknown>, string, string | undefined]> = [
    ['glpat-own-snippets', SNIPPET, { projectPath: 'other/tools', title: 'x', visibilityLevel: 'private' }, 'Project', 'project other/tools'],
    ['glpat-instance', RUNNER, { runnerType: 'PROJECT_TYPE', projectId: 'gid://gitlab/Project/300' }, 'Project', 'project 300'],
    ['glpat-instance', RUNNER, { runnerType: 'GROUP_TYPE', groupId: 'gid://gitlab/Group/20' }, 'Group', 'group 20'],
    ['glpat-instance', ROLE, { groupPath: 'other', name: 'x', baseAccessLevel: 'GUEST' }, 'Group', 'group other'],
    // runnerUpdate's associatedProjects are checked at each project (graphql-list-targets.test.ts).
    ['glpat-instance', 'mutation($input: RunnerUpdateInput!) { runnerUpdate(input: $input) { errors } }', { id: 'gid://gitlab/Ci::Runner/5', associatedProjects: ['gid://gitlab/Project/300'] }, 'Project', 'project 300'],
    ['glpat-tools-snippets', SNIPPET, { title: 'x', visibilityLevel: 'private' }, 'User', undefined],
    ['glpat-other', RUNNER, { runnerType: 'INSTANCE_TYPE' }, 'Instance', undefined],
    ['glpat-other', ROLE, { name: 'x', baseAccessLevel: 'GUEST' }, 'Instance', undefined],
    // An organization is no group, nor GitLab's boundary: its applications are the instance's.
    ['glpat-other', 'mutation($input: CdApplicationCreateInput!) { cdApplicationCreate(input: $input) { errors } }', { organizationId: 'gid://gitlab/Organizations::Organization/1', name: 'x' }, 'Instance', undefined]
  ]
  for (const [token, query, input, boundary, target] of refused) {
    const answer = await postGraphql(g.url, { query, variables: { input } }, { 'private-token': token })
    assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${token} ${JSON.stringify(input)}: ${answer.text}`)
    assert.equal(answer.body.errors[0].extensions.boundary, boundary)
    assert.equal(answer.body.errors[0].extensions.target, target)
  }
  assert.equal(g.upstream.length, 0)
  // Without a project or group, the user or instance entry decides; with one, a scope reaching it.
  const allowed: Array<[string, string, Record<string, unknown>]> = [
    ['glpat-own-snippets', SNIPPET, { title: 'x', visibilityLevel: 'private' }],
    ['glpat-tools-snippets', SNIPPET, { projectPath: 'other/tools', title: 'x', visibilityLevel: 'private' }],
    ['glpat-instance', RUNNER, { runnerType: 'INSTANCE_TYPE' }],
    ['glpat-instance', 'mutation($input: RunnerUpdateInput!) { runnerUpdate(input: $input) { errors } }', { id: 'gid://gitlab/Ci::Runner/5', tagList: ['docker'] }],
    ['glpat-other', RUNNER, { runnerType: 'PROJECT_TYPE', projectId: 'gid://gitlab/Project/300' }],
    ['glpat-other', ROLE, { groupPath: 'other', name: 'x', baseAccessLevel: 'GUEST' }],
    ['glpat-other', 'mutation($input: CdApplicationCreateInput!) { cdApplicationCreate(input: $input) { errors } }', { groupPath: 'other', name: 'x' }]
  ]
  for (const [token, query, input] of allowed) {
    const answer = await postGraphql(g.url, { query, variables: { input } }, { 'private-token': token })
    assert.deepEqual(answer.body, { data: { upstream: true } }, `${token} ${JSON.stringify(input)}: ${answer.text}`)
  }
  assert.equal(g.upstream.length, allowed.length)
})

test('with a schema, the mutation at the root is read the same way, a type under a project keeps every boundary', async () => {
  const index = new GraphqlCatalogIndex(loadGraphqlCatalog())
  const schema = parseSchema(`
    type Query { project(fullPath: ID!): Project }
    type Project { id: ID! pipeline: CiJob }
    type CiJob { id: ID! runner: CiRunner }
    type CiRunner { id: ID! }
    input CreateSnippetInput { projectPath: ID, title: String! }
    type CreateSnippetPayload { errors: [String!]! }
    type Mutation { createSnippet(input: CreateSnippetInput!): CreateSnippetPayload }
  `)
  const needs = (text: string, name: string): string[] => {
    const explained = explainGraphql(parseDocument(text), index, { schema })
    return explained.operations[0]!.touches.filter(t => t.name === name).flatMap(t => t.permissions.map(p => `${p.permission}@${p.boundary}`))
  }
  assert.deepEqual(needs('mutation { createSnippet(input: {projectPath: "other/tools", title: "x"}) { errors } }', 'createSnippet'), ['create_snippet@Project'])
  assert.deepEqual(needs('mutation { createSnippet(input: {title: "x"}) { errors } }', 'createSnippet'), ['create_snippet@User'])
  // A global ID in a title is no boundary to GitLab: nothing is named
  // (graphql-several-boundaries-decoy-ids.test.ts).
  assert.deepEqual(needs('mutation { createSnippet(input: {title: "gid://gitlab/Issue/1"}) { errors } }', 'createSnippet'), ['create_snippet@User'])
  // A job's runner may be an instance runner, which GitLab checks at the instance.
  assert.deepEqual(needs('{ project(fullPath: "other/tools") { pipeline { runner { id } } } }', 'CiRunner'), ['read_runner@Project', 'read_runner@Group', 'read_runner@Instance'])
})
