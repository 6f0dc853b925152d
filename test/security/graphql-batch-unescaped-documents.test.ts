// Regression: GitLab applies graphql-ruby's `escape_single_quoted_newlines` to a single query only
// (GraphqlController#query); each operation of a batch is parsed as sent (#multiplex_queries).
// The escape toggles on every `"`, one in a comment too, so after a `#"` at the end of a line it
// escapes the line feed and the comment runs on over the next line. The gate escaped batched
// operations as well: a field or mutation on the line after `#"` was a comment to the gate and
// code to GitLab. A fine-grained token's batch ran a query on a project the gate never checked,
// and a batched allowlist mutation or scope change reached GitLab's own allowlist unrefused.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parse } from 'graphql'
import { escapeSingleQuotedNewlines } from '../../src/admin/graphql.ts'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] },
  'glpat-legacy': { userId: 7 }
}
const pat = { 'private-token': 'glpat-lib-reader' }
const HIDDEN = '{ a: project(fullPath: "acme/lib") { id } #"\n b: project(fullPath: "other/tools") { id } #"\n}'

/** The root fields of a document's only operation. */
const rootFields = (doc: string): string[] => {
  const op = parse(doc).definitions[0]
  return op?.kind === 'OperationDefinition' ? op.selectionSet.selections.map(s => s.kind === 'Field' ? s.alias?.value ?? s.name.value : s.kind) : []
}

test('premise: escaping the document hides the second line, which the text as sent runs', () => {
  assert.deepEqual(rootFields(HIDDEN), ['a', 'b'], 'a batched operation, as GitLab parses it')
  assert.deepEqual(rootFields(escapeSingleQuotedNewlines(HIDDEN)), ['a'], 'a single query, as GitLab parses it')
})

test('a fine-grained token\'s batched operation is read as sent: a field after `#"` is checked', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  for (const body of [[{ query: HIDDEN }], [{ query: '{ __typename }' }, { query: HIDDEN }]]) {
    const answer = await postGraphql(g.url, body, pat)
    assert.ok(Array.isArray(answer.body), answer.text)
    const refused = answer.body.find((r: any) => r.errors[0].extensions.code !== 'GRAPHQL_BATCH_NOT_RUN')
    assert.equal(refused?.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING', answer.text)
    assert.equal(refused?.errors[0].extensions.target, 'project other/tools')
  }
  // Form batches (`_json[][query]=`) are batches too.
  const form = await postGraphql(g.url, `_json[][query]=${encodeURIComponent(HIDDEN)}`, { ...pat, 'content-type': 'application/x-www-form-urlencoded' })
  assert.equal(form.body?.[0]?.errors?.[0]?.extensions?.target, 'project other/tools', form.text)
  assert.equal(g.upstream.length, 0)
  // A single query is escaped by GitLab too: it runs `a` alone, and goes through.
  const single = await postGraphql(g.url, { query: HIDDEN }, pat)
  assert.deepEqual(single.body, { data: { upstream: true } }, single.text)
  assert.equal(g.upstream.length, 1)
})

test('a batched allowlist mutation or scope change after `#"` is refused, whatever the token', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const documents = [
    'mutation { a: __typename #"\n ciJobTokenScopeAddProject(input: {projectPath: "acme/lib", targetProjectPath: "other/tools"}) { errors } #"\n}',
    'mutation { a: __typename #"\n projectCiCdSettingsUpdate(input: {fullPath: "acme/lib", inboundJobTokenScopeEnabled: false}) { errors } #"\n}'
  ]
  for (const headers of [{ 'private-token': 'glpat-legacy' }, {}] as Array<Record<string, string>>) {
    for (const query of documents) {
      const answer = await postGraphql(g.url, [{ query }], headers)
      assert.equal(answer.status, 400, `${query}: ${answer.text}`)
      assert.match(answer.body.code, /^GRAPHQL_(?:MIXED_OPERATION|ALLOWLIST_MANAGED_BY_GATE)$/)
    }
  }
  assert.equal(g.upstream.length, 0)
})
