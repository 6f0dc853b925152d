// Finding: a fine-grained token's GraphQL mutation naming a project or group by path looks that
// path up anew, once per request, but the groups above what it finds were still read from the
// lookups of groups by id, kept 60 s for every caller. A group's id never changes hands, its
// parent does: acme/platform (11) transferred from acme (10) to other (20) was still under acme to
// the gate for up to 60 s after any request had named something in it, so a token whose
// permissions reach acme only had a mutation naming other/platform/app (100) by its new path
// forwarded, and GitLab ran it on a project no longer under acme; so did one naming the project by
// its global ID, whose lookup was kept whole. A mutation's targets, by path or id, and the groups
// above them are now asked anew, once per request (a batch's operations share them).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken, type GraphqlGate } from '../helpers/graphql-gate.ts'

const PERMISSIONS = ['read_project', 'update_ci_cd_setting', 'update_project']
const TOKENS: Record<string, FakeToken> = {
  // Reaches the group acme (10) and what is under it.
  'glpat-acme': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: PERMISSIONS, group_id: 10 }] }
}
const settings = (fullPath: string): string => `mutation { projectCiCdSettingsUpdate(input: { fullPath: "${fullPath}", keepLatestArtifact: true }) { errors } }`
const star = (id: string): string => `mutation { starProject(input: { projectId: "gid://gitlab/Project/${id}", starred: true }) { errors } }`
const read = (fullPath: string): string => `query { project(fullPath: "${fullPath}") { id } }`

/** acme/platform (11) moves from acme (10) to other (20), its project acme/platform/app (100) with it. */
function transfer (g: GraphqlGate): void {
  g.gitlab.groups.set(11, { id: 11, fullPath: 'other/platform', parentId: 20 })
  const app = g.gitlab.projects.get(100)!
  g.gitlab.projects.set(100, { ...app, pathWithNamespace: 'other/platform/app', namespace: { id: 11, kind: 'group', fullPath: 'other/platform', parentId: 20 } })
}

test('a mutation is checked at the groups its project is under now, not those a lookup kept', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  // A request naming the project while it is under acme has its groups kept.
  for (const query of [settings('acme/platform/app'), star('100'), read('acme/platform/app')]) {
    const res = await postGraphql(g.url, { query }, { 'private-token': 'glpat-acme' })
    assert.deepEqual(res.body, { data: { upstream: true } }, res.text)
  }
  transfer(g)
  const before = g.upstream.length
  // By its new path, and by its id, which never changed hands.
  for (const query of [settings('other/platform/app'), star('100'), star('0100')]) {
    const res = await postGraphql(g.url, { query }, { 'private-token': 'glpat-acme' })
    assert.equal(res.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${query}: ${res.text}`)
  }
  assert.equal(g.upstream.length, before, 'nothing forwarded to GitLab')
})

test('a request\'s mutations walk each group once, each request anew', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const aliased = `mutation { ${Array.from({ length: 30 }, (_, i) => `a${i}: projectCiCdSettingsUpdate(input: { fullPath: "${i % 2 === 0 ? 'acme/platform/app' : 'acme/lib'}", keepLatestArtifact: true }) { errors }`).join(' ')} }`
  const batch = Array.from({ length: 30 }, () => ({ query: settings('acme/platform/app') }))
  for (const [body, groups] of [[{ query: aliased }, 2], [{ query: aliased }, 2], [batch, 2], [batch, 2]] as const) {
    const before = g.gitlab.calls.group
    const res = await postGraphql(g.url, body, { 'private-token': 'glpat-acme' })
    assert.equal(res.status, 200, res.text)
    assert.equal(JSON.stringify(res.body).includes('GRAPHQL_PERMISSION_MISSING'), false, res.text)
    // acme/platform (11) and acme (10), once each, whichever project named them.
    assert.equal(g.gitlab.calls.group - before, groups, 'each group once for the request')
  }
})
