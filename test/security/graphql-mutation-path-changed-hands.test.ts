// Finding: the projects and groups a fine-grained token's GraphQL request names by path are looked
// up with the service token and kept 60 s for every caller. A path that changed hands in the
// meantime (acme/lib moved away, other/tools renamed to acme/lib) was still the old project to the
// gate, so a token whose permissions reach acme/lib (200) only had GitLab's own mutations forwarded
// by that path, which GitLab ran on other/tools (300), the project the path names now: the attack
// the configuration API closes by asking again at the id it acts on, through mutations the gate
// cannot run by id. A mutation's paths are now asked of GitLab anew, once per request; reads keep
// the lookups.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken, type GraphqlGate } from '../helpers/graphql-gate.ts'

const PERMISSIONS = ['read_project', 'update_ci_cd_setting', 'create_work_item']
const TOKENS: Record<string, FakeToken> = {
  // Both reach acme/lib (200) only.
  'glpat-lib': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: PERMISSIONS, project_id: 200 }] },
  'glpat-neighbour': { userId: 8, scopes: [{ access: 'selected_memberships', permissions: PERMISSIONS, project_id: 200 }] }
}
const settings = (fullPath: string): string => `mutation { projectCiCdSettingsUpdate(input: { fullPath: "${fullPath}", keepLatestArtifact: true }) { errors } }`
const issue = (projectPath: string): string => `mutation { createIssue(input: { projectPath: "${projectPath}", title: "t" }) { errors } }`
const read = (fullPath: string): string => `query { project(fullPath: "${fullPath}") { id } }`

/** Anyone's request naming acme/lib has its lookup kept; then the paths change hands in GitLab. */
async function pathChangesHands (g: GraphqlGate): Promise<void> {
  for (const query of [settings('acme/lib'), issue('acme/lib'), read('acme/lib')]) {
    const res = await postGraphql(g.url, { query }, { 'private-token': 'glpat-neighbour' })
    assert.deepEqual(res.body, { data: { upstream: true } }, res.text)
  }
  const lib = g.gitlab.projects.get(200)!
  const tools = g.gitlab.projects.get(300)!
  g.gitlab.projects.set(200, { ...lib, pathWithNamespace: 'acme/lib-old' })
  g.gitlab.projects.set(300, { ...tools, pathWithNamespace: 'acme/lib' })
}

test('a mutation by a path that changed hands is checked at the project the path names now', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  await pathChangesHands(g)
  const before = g.upstream.length
  for (const query of [settings('acme/lib'), issue('acme/lib'), settings('ACME/lib/')]) {
    const res = await postGraphql(g.url, { query }, { 'private-token': 'glpat-lib' })
    assert.equal(res.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${query}: ${res.text}`)
  }
  assert.equal(g.upstream.length, before, 'nothing forwarded to GitLab')
  // acme/lib under its new path is still the token's.
  for (const query of [settings('acme/lib-old'), issue('acme/lib-old')]) {
    const res = await postGraphql(g.url, { query }, { 'private-token': 'glpat-lib' })
    assert.deepEqual(res.body, { data: { upstream: true } }, res.text)
  }
})

test('a request\'s mutations ask GitLab once per path, each request anew; reads keep the lookups', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const aliased = `mutation { ${Array.from({ length: 30 }, (_, i) => `a${i}: projectCiCdSettingsUpdate(input: { fullPath: "acme/lib", keepLatestArtifact: true }) { errors }`).join(' ')} }`
  const batch = Array.from({ length: 30 }, () => ({ query: issue('acme/lib') }))
  // A project by path (its groups, asked by id, are counted in graphql-mutation-group-transferred.test.ts).
  const lookups = (): number => g.gitlab.calls.project
  for (const body of [{ query: aliased }, { query: aliased }, batch, batch]) {
    const before = lookups()
    const res = await postGraphql(g.url, body, { 'private-token': 'glpat-lib' })
    assert.equal(res.status, 200, res.text)
    assert.equal(JSON.stringify(res.body).includes('GRAPHQL_PERMISSION_MISSING'), false, res.text)
    assert.equal(lookups() - before, 1, 'one project lookup for the request')
  }
  // Reads are decided from the lookups kept.
  const first = await postGraphql(g.url, { query: read('acme/lib') }, { 'private-token': 'glpat-lib' })
  assert.deepEqual(first.body, { data: { upstream: true } }, first.text)
  const before = lookups()
  for (let i = 0; i < 3; i++) await postGraphql(g.url, { query: read('acme/lib') }, { 'private-token': 'glpat-lib' })
  assert.equal(lookups(), before)
})
