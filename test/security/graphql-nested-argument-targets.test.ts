// Regression: with GitLab's schema, a nested field was checked at the projects and groups its
// own arguments named instead of its ancestors' whenever it named any. GitLab checks what the
// field returns where it is: `project(fullPath: "other/tools") { pipelineSchedules }` reads
// other/tools' schedules, whatever the cursor. So `pipelineSchedules(after:
// "gid://gitlab/Project/100")` had the schedules checked at acme/platform/app, which the token
// reached, and `after: "gid://gitlab/Ci::PipelineSchedule/1"` (another object: any scope holding
// the permission) at nothing; either way a token that reads other/tools' project but only acme's
// pipeline schedules had other/tools' schedules forwarded. A nested field is checked at its
// ancestors' targets and at its own now.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-mixed': {
    userId: 7,
    scopes: [
      { access: 'selected_memberships', permissions: ['read_project'], project_id: 300 },
      { access: 'selected_memberships', permissions: ['read_project', 'read_pipeline_schedule', 'read_work_item'], group_id: 10 }
    ]
  }
}
const pat = { 'private-token': 'glpat-mixed' }

test('an argument of a nested field does not move its check off the project its ancestor names', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, schema: true })
  const cases: Array<[string, Record<string, unknown>]> = [
    ['{ project(fullPath: "other/tools") { pipelineSchedules { nodes { id cron } } } }', {}],
    ['{ project(fullPath: "other/tools") { pipelineSchedules(after: "gid://gitlab/Project/100") { nodes { id cron } } } }', {}],
    ['{ project(fullPath: "other/tools") { pipelineSchedules(after: "gid://gitlab/Ci::PipelineSchedule/1") { nodes { id cron } } } }', {}],
    ['query($c: String) { project(fullPath: "other/tools") { pipelineSchedules(after: $c) { nodes { id } } } }', { c: 'gid://gitlab/Project/100' }],
    ['{ project(fullPath: "other/tools") { issue(iid: "gid://gitlab/Project/100") { id } } }', {}],
    ['{ project(fullPath: "other/tools") { issue(iid: "gid://gitlab/Issue/1") { id } } }', {}],
    ['{ project(fullPath: "other/tools") { ... on Project { pipelineSchedules(after: "gid://gitlab/Group/10") { nodes { id } } } } }', {}]
  ]
  for (const [query, variables] of cases) {
    const answer = await postGraphql(g.url, { query, variables }, pat)
    assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${query}: ${answer.text}`)
    assert.equal(answer.body.errors[0].extensions.target, 'project other/tools', `${query}: ${answer.text}`)
  }
  assert.equal(g.upstream.length, 0)
  // Where the token reaches both, and the project alone, it goes on to GitLab.
  for (const query of [
    '{ project(fullPath: "acme/lib") { pipelineSchedules(after: "gid://gitlab/Project/100") { nodes { id } } } }',
    '{ project(fullPath: "acme/lib") { issue(iid: "gid://gitlab/Issue/1") { id } } }',
    '{ project(fullPath: "other/tools") { name } }'
  ]) {
    const answer = await postGraphql(g.url, { query }, pat)
    assert.deepEqual(answer.body, { data: { upstream: true } }, `${query}: ${answer.text}`)
  }
})

test('the projects a nested field and its ancestors name count together toward the eight a field may name', async (t) => {
  const g = await startGraphqlGate(t, { tokens: { 'glpat-all': { userId: 7, scopes: [{ access: 'all_memberships', permissions: ['read_project', 'read_pipeline_schedule'] }] } }, schema: true })
  const query = (n: number): string => `{ project(fullPath: "acme/lib") { pipelineSchedules(x: ${JSON.stringify(Array.from({ length: n }, (_, i) => `gid://gitlab/Project/${1000 + i}`))}) { nodes { id } } } }`
  const many = await postGraphql(g.url, { query: query(8) }, { 'private-token': 'glpat-all' })
  assert.equal(many.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_DOCUMENT_INVALID', many.text)
  assert.match(many.body.errors[0].message, /name more than 8 projects, groups or namespaces/)
  const seven = await postGraphql(g.url, { query: query(7) }, { 'private-token': 'glpat-all' })
  assert.deepEqual(seven.body, { data: { upstream: true } }, seven.text)
})
