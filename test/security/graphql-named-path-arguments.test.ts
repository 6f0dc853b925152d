// Regression: the gate read a path target from `projectPath`, `groupPath` and `fullPath` (and
// their lists) only. issueMove names the project it moves an issue into as `targetProjectPath`,
// and GitLab checks the token at `projectPath` alone (`boundary_argument: :project_path`): a
// token holding Work Item: Update at acme/lib only had an issue of acme/lib moved into
// other/tools forwarded, where it may create nothing. Arguments whose name ends in ProjectPath,
// GroupPath, FullPath or NamespacePath (and `namespacePath`) name targets now, each checked.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['update_work_item', 'push_code'], project_id: 200 }] },
  'glpat-acme': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['update_work_item'], group_id: 10 }] }
}
const MOVE = 'mutation($input: IssueMoveInput!) { issueMove(input: $input) { errors } }'

test('the project an issue is moved into is checked, not only the one it leaves', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const lib = { 'private-token': 'glpat-lib' }
  const moved = await postGraphql(g.url, { query: MOVE, variables: { input: { projectPath: 'acme/lib', iid: '1', targetProjectPath: 'other/tools' } } }, lib)
  assert.equal(moved.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', moved.text)
  assert.equal(moved.body.errors[0].extensions.target, 'project other/tools')
  // Written in the document, or as another argument naming a path by its ending: the same.
  for (const query of [
    'mutation { issueMove(input: {projectPath: "acme/lib", iid: "1", targetProjectPath: "other/tools"}) { errors } }',
    'mutation { issueMove(input: {projectPath: "acme/lib", iid: "1", targetProjectPath: "acme/lib", targetFullPath: "other/tools"}) { errors } }',
    'mutation { commitCreate(input: {projectPath: "acme/lib", branch: "b", startProjectPath: "other/tools", message: "m", actions: []}) { errors } }'
  ]) {
    const answer = await postGraphql(g.url, { query }, lib)
    assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${query}: ${answer.text}`)
    assert.match(answer.body.errors[0].extensions.target, /^(?:project|namespace) other\/tools$/)
  }
  assert.equal(g.upstream.length, 0)
  // Within the token's reach the move goes on; a file's path names no project.
  const within = await postGraphql(g.url, { query: MOVE, variables: { input: { projectPath: 'acme/lib', iid: '1', targetProjectPath: 'acme/platform/app' } } }, { 'private-token': 'glpat-acme' })
  assert.deepEqual(within.body, { data: { upstream: true } }, within.text)
  const files = await postGraphql(g.url, { query: 'mutation { commitCreate(input: {projectPath: "acme/lib", branch: "b", message: "m", actions: [{action: CREATE, filePath: "other/tools", previousPath: "x"}]}) { errors } }' }, lib)
  assert.deepEqual(files.body, { data: { upstream: true } }, files.text)
  assert.equal(g.upstream.length, 2)
})
