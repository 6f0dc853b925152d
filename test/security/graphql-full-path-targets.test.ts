// Regression (over-deny): a mutation's `fullPath` (projectCiCdSettingsUpdate, projectSettingsUpdate)
// was looked up as a namespace, `GET /namespaces/:path`, which shows groups and users but no
// project: "The namespace acme/lib was not found", and every token with a selected or personal
// scope was refused CI/CD Setting: Update on its own project. GitLab takes such a path as a
// project's, else a group's (BoundaryExtractor#resolve_path); so does the gate now.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['update_ci_cd_setting'], project_id: 200 }] },
  'glpat-platform': { userId: 8, scopes: [{ access: 'selected_memberships', permissions: ['update_ci_cd_setting'], group_id: 11 }] }
}
const update = (fullPath: string): string => `mutation { projectCiCdSettingsUpdate(input: { fullPath: "${fullPath}", keepLatestArtifact: true }) { errors } }`

for (const schema of [false, true]) {
  test(`a mutation's fullPath is a project's, else a group's (${schema ? 'with' : 'without'} the schema)`, async (t) => {
    const g = await startGraphqlGate(t, { tokens: TOKENS, schema })
    for (const [token, path] of [['glpat-lib', 'acme/lib'], ['glpat-platform', 'acme/platform/app'], ['glpat-platform', 'acme/platform']]) {
      const answer = await postGraphql(g.url, { query: update(path!) }, { 'private-token': token! })
      assert.deepEqual(answer.body, { data: { upstream: true } }, `${token} ${path}: ${answer.text}`)
    }
    for (const [token, path, target] of [['glpat-lib', 'other/tools', 'Target: namespace other/tools.'], ['glpat-platform', 'acme/lib', 'Target: namespace acme/lib.'], ['glpat-lib', 'acme', 'Target: namespace acme.'], ['glpat-lib', 'nowhere/x', 'The namespace nowhere/x was not found.']]) {
      const answer = await postGraphql(g.url, { query: update(path!) }, { 'private-token': token! })
      assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${token} ${path}: ${answer.text}`)
      assert.ok(answer.body.errors[0].message.endsWith(target!), answer.body.errors[0].message)
    }
    assert.equal(g.upstream.length, 3)
  })
}
