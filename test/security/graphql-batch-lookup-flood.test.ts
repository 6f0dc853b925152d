// Finding: a GraphQL batch of a fine-grained personal access token was checked operation by
// operation to its end, even after one was refused and the batch with it; each operation naming
// a project the token's selected memberships might reach is one lookup in GitLab. One request
// of 440 KB, 5,000 operations each naming a different unknown project, made the gate call GitLab
// 5,000 times (6 s of one request) for an answer its first refusal had already decided. The
// operations after a refused one are no longer checked: they are answered "not run".

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { scrape, total } from '../helpers/metrics.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
}

test('a batch of thousands of unknown projects costs GitLab one lookup, and is refused whole', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const lookups = async (): Promise<number> => total((await scrape(g.healthUrl)).samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'graphql_target_project' })
  // Within GitLab's 10,000 characters of queries: a larger batch is refused before any lookup.
  const batch = [
    { query: '{ project(fullPath: "acme/lib") { id } }' },
    ...Array.from({ length: 200 }, (_, i) => ({ query: 'query($p: ID!) { project(fullPath: $p) { id } }', variables: { p: `nobody/p${i}` } }))
  ]
  const before = await lookups()
  const answer = await postGraphql(g.url, batch, { 'private-token': 'glpat-lib-reader' })
  assert.equal(answer.status, 200)
  assert.equal(answer.body.length, batch.length, 'one result per operation, in order')
  assert.equal(answer.body[0].errors[0].extensions.code, 'GRAPHQL_BATCH_NOT_RUN')
  assert.equal(answer.body[1].errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.match(answer.body[1].errors[0].message, /nobody\/p0 was not found/)
  for (const later of answer.body.slice(2)) assert.equal(later.errors[0].extensions.code, 'GRAPHQL_BATCH_NOT_RUN')
  assert.ok(await lookups() - before <= 2, `at most acme/lib and the first unknown project were looked up, not ${await lookups() - before}`)
  assert.equal(g.upstream.length, 0, 'nothing forwarded')
})
