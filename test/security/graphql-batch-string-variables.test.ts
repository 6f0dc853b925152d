// Regression: in a batch, GitLab keeps an operation's `variables` only as a hash
// (`permitted_multiplex_params`: `variables: {}` permits no string), so `variables` sent as a
// JSON string is dropped and the operation runs with its variables' defaults. The gate parsed the
// string and checked the values GitLab never used: a default naming another project, or a
// default input that turns off GitLab's job token scope, reached GitLab unchecked.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
}
const pat = { 'private-token': 'glpat-lib-reader' }
const DEFAULT_OTHER = 'query($p: ID! = "other/tools") { project(fullPath: $p) { id } }'

test('a fine-grained token\'s batch: a JSON-string `variables` is checked as GitLab runs it, without it', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const batch = await postGraphql(g.url, [{ query: DEFAULT_OTHER, variables: JSON.stringify({ p: 'acme/lib' }) }], pat)
  assert.ok(Array.isArray(batch.body), batch.text)
  assert.equal(batch.body[0].errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.equal(batch.body[0].errors[0].extensions.target, 'project other/tools')
  // Form batches send every value as a string: the same.
  const form = await postGraphql(g.url, `_json[][query]=${encodeURIComponent(DEFAULT_OTHER)}&_json[][variables]=${encodeURIComponent('{"p":"acme/lib"}')}`, { ...pat, 'content-type': 'application/x-www-form-urlencoded' })
  assert.equal(form.body?.[0]?.errors?.[0]?.extensions?.target, 'project other/tools', form.text)
  assert.equal(g.upstream.length, 0)
  // A hash is kept in a batch, and a single query parses its string: both go through as before.
  const hash = await postGraphql(g.url, [{ query: DEFAULT_OTHER, variables: { p: 'acme/lib' } }], pat)
  assert.deepEqual(hash.body, { data: { upstream: true } }, hash.text)
  const single = await postGraphql(g.url, { query: DEFAULT_OTHER, variables: JSON.stringify({ p: 'acme/lib' }) }, pat)
  assert.deepEqual(single.body, { data: { upstream: true } }, single.text)
  assert.equal(g.upstream.length, 2)
})

test('a batched scope change hidden behind a JSON-string `variables` is refused, not forwarded', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const mutation = 'mutation($i: ProjectCiCdSettingsUpdateInput! = {fullPath: "acme/lib", inboundJobTokenScopeEnabled: false}) { projectCiCdSettingsUpdate(input: $i) { errors } }'
  const answer = await postGraphql(g.url, [{ query: mutation, variables: JSON.stringify({ i: { fullPath: 'acme/lib', keepLatestArtifact: true } }) }], { 'private-token': 'glpat-maintainer' })
  assert.equal(answer.status, 400, answer.text)
  assert.equal(answer.body.code, 'GRAPHQL_ALLOWLIST_MANAGED_BY_GATE')
  assert.equal(g.upstream.length, 0)
})
