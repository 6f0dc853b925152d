// Finding: GitLab reads a global ID's id as ActiveRecord does, so `gid://gitlab/Project/0200`,
// `/00200`, `/000200`, ... are all project 200, and the gate, which knew that when it compared
// GitLab's answer with the id asked, looked each spelling up apart and kept each under its own
// key. A fine-grained token whose selected membership reaches one project had every spelling of
// that project allowed, each one more lookup in GitLab: one document of 150 mutations naming
// project 200 cost 150 calls, one after another, a batch of 950 KB 1,280 (more with each project
// the token reaches), request after request, with no bound; the spellings also filled the
// lookups' cache, pushing out other requests' projects. An id is now asked and kept without its
// leading zeros: one lookup per project, however it is spelt.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { scrape, total } from '../helpers/metrics.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-writer': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['update_project'], project_id: 200 }] }
}

test('spellings of one project\'s global ID cost GitLab one lookup, not one each', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const lookups = async (): Promise<number> => total((await scrape(g.healthUrl)).samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'graphql_target_project' })
  const spellings = Array.from({ length: 150 }, (_, i) => `gid://gitlab/Project/${'0'.repeat(i)}200`)
  const document = `mutation { ${spellings.map((id, i) => `s${i}: starProject(input: { projectId: "${id}", starred: true }) { clientMutationId }`).join(' ')} }`
  const before = await lookups()
  const answer = await postGraphql(g.url, { query: document }, { 'private-token': 'glpat-lib-writer' })
  assert.equal(answer.status, 200, answer.text)
  assert.deepEqual(answer.body, { data: { upstream: true } }, 'allowed: every spelling is acme/lib, which the token reaches')
  assert.equal(g.upstream.length, 1)
  assert.equal(await lookups() - before, 1, 'project 200 looked up once')

  // Its spellings are that project still: not found, they refuse, found elsewhere, they are checked there.
  const other = await postGraphql(g.url, { query: 'mutation { starProject(input: { projectId: "gid://gitlab/Project/000300", starred: true }) { clientMutationId } }' }, { 'private-token': 'glpat-lib-writer' })
  assert.equal(other.body.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', other.text)
  assert.match(other.body.errors[0].message, /Target: project other\/tools/)
  assert.equal(g.upstream.length, 1, 'other/tools is not the token\'s')
})
