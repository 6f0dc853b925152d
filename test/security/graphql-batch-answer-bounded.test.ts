// Finding: a GraphQL batch of a fine-grained personal access token that the gate refuses is
// answered one result per operation (the refusal, then "not run" for each after it), and an
// operation can be three characters (`{a}`): 65,000 of them in a 1 MiB batch were answered with
// 12.5 MB, which the gate held whole until the client read it, for any user, whose own
// fine-grained token will do. GitLab runs nothing of a batch whose queries hold more than 10,000
// characters together (GraphqlController#limit_query_size) and answers it with one error; so does
// the gate now, GRAPHQL_DOCUMENT_TOO_LARGE, before any operation is checked or looked up.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
}

test('a batch over GitLab\'s query size is refused in one error, not one per operation', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const batch = [{ query: '{ project(fullPath: "nobody/p") { id } }' }, ...Array.from({ length: 65_000 }, () => ({ query: '{a}' }))]
  const answer = await postGraphql(g.url, batch, { 'private-token': 'glpat-lib-reader' })
  assert.equal(answer.status, 200)
  assert.ok(JSON.stringify(answer.body).length < 2048, `an answer of ${JSON.stringify(answer.body).length} bytes`)
  assert.equal(answer.body.errors[0].extensions.code, 'GRAPHQL_DOCUMENT_TOO_LARGE')
  assert.match(answer.body.errors[0].message, /^Query too large/)
  assert.equal(g.upstream.length, 0, 'nothing forwarded')
})

test('a batch within GitLab\'s query size, astral characters counted once, is still decided operation by operation', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  // 5,000 emoji are 10,000 UTF-16 units but 5,000 characters to GitLab: within its 10,000.
  const batch = [{ query: '{ project(fullPath: "nobody/p") { id } }' }, { query: `{ a } # ${'😀'.repeat(5000)}` }]
  const answer = await postGraphql(g.url, batch, { 'private-token': 'glpat-lib-reader' })
  assert.equal(answer.status, 200)
  assert.equal(answer.body.length, 2)
  assert.equal(answer.body[0].errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.equal(answer.body[1].errors[0].extensions.code, 'GRAPHQL_BATCH_NOT_RUN')
})
