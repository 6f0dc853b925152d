// Finding: a fine-grained token's write to the configuration API's REST endpoints is held to its
// permission at the path's project, then at the project's id, both from the target lookups kept
// 60 s for every caller: the project's own and those of the groups above it. A group's id never
// changes hands, its parent does: for 60 s after acme/platform (11) was transferred from acme (10)
// to other (20), a token whose permissions reach acme only, held by a Maintainer of
// acme/platform/app (100), had an allowlist entry added to it, by its id or its new path. A write's
// project and the groups above it are now asked anew, once per request, as a mutation's are.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { apiCall, startGraphqlGate, type ApiAnswer, type FakeToken, type GraphqlGate } from '../helpers/graphql-gate.ts'

const PERMISSIONS = ['read_project', 'create_job_token_scope_allowlist', 'delete_job_token_scope_allowlist', 'update_job_token_scope']
const ACME = 'glpat-fg-acme-only'
const TOKENS: Record<string, FakeToken> = {
  // Reaches the group acme (10) and what is under it.
  [ACME]: { userId: 41, scopes: [{ access: 'selected_memberships', permissions: PERMISSIONS, group_id: 10 }] }
}
// A Maintainer of acme/platform/app wherever it is: only the token's scope refuses.
const USERS = { [ACME]: { id: 41, username: 'maintainer', access: { 100: 40, 200: 40 } } }

const call = async (g: GraphqlGate, method: string, path: string, body?: unknown): Promise<ApiAnswer> => await apiCall(g, method, path, ACME, body)

/** acme/platform (11) moves from acme (10) to other (20), its project acme/platform/app (100) with it. */
function transfer (g: GraphqlGate): void {
  g.gitlab.groups.set(11, { id: 11, fullPath: 'other/platform', parentId: 20 })
  const app = g.gitlab.projects.get(100)!
  g.gitlab.projects.set(100, { ...app, pathWithNamespace: 'other/platform/app', namespace: { id: 11, kind: 'group', fullPath: 'other/platform', parentId: 20 } })
}

test('REST: a write is checked at the groups its project is under now, not those a lookup kept', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS })
  // Reads while the project is under acme keep its lookups.
  for (const path of ['/projects/100/job_token_scope', '/projects/acme%2Fplatform%2Fapp/job_token_scope']) {
    const read = await call(g, 'GET', path)
    assert.equal(read.status, 200, JSON.stringify(read.body))
  }
  transfer(g)
  for (const path of ['/projects/100/job_token_scope/allowlist', '/projects/other%2Fplatform%2Fapp/job_token_scope/allowlist']) {
    const added = await call(g, 'POST', path, { target_project_id: 300 })
    assert.equal(added.status, 403, `${path}: ${JSON.stringify(added.body)}`)
    assert.equal(added.body.code, 'ADMIN_TOKEN_PERMISSION_MISSING')
  }
  const updated = await call(g, 'PATCH', '/projects/100/job_token_scope', { inbound_enabled: false })
  assert.equal(updated.status, 403, JSON.stringify(updated.body))
  assert.equal(await g.gate.grants.get(100), null, 'nothing written to other/platform/app')
})

test('REST: a write asks its project and each group above it once', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, users: USERS })
  for (const [path, target] of [['/projects/100/job_token_scope/allowlist', 300], ['/projects/acme%2Fplatform%2Fapp/job_token_scope/allowlist', 200]] as const) {
    const groups = g.gitlab.calls.group
    const added = await call(g, 'POST', path, { target_project_id: target })
    assert.equal(added.status, 201, `${path}: ${JSON.stringify(added.body)}`)
    // acme/platform (11) and acme (10), once each, each request anew.
    assert.equal(g.gitlab.calls.group - groups, 2, path)
  }
})
