// Regression: the gate took a field's target from the first global ID among its arguments, under
// any argument name. GitLab takes the boundary from one argument (the directive's
// `boundary_argument`: `project` for vulnerabilityCreate), so a global ID placed before it in
// another argument chose what the gate checked: with `clientMutationId:
// "gid://gitlab/Vulnerability/1"` first, the target was "another object" (allowed to any scope
// holding the permission), and with `name: "gid://gitlab/Project/200"` first, the token's own
// project. Either way a token allowed to create vulnerabilities in acme/lib (200) alone had its
// vulnerabilityCreate on other/tools (300) forwarded. Every project and group the arguments name
// is checked now.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-writer': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'create_vulnerability', 'read_vulnerability'], project_id: 200 }] }
}
const pat = { 'private-token': 'glpat-lib-writer' }
const CREATE = 'mutation($input: VulnerabilityCreateInput!) { vulnerabilityCreate(input: $input) { errors } }'
const scanner = { id: 's', name: 's', url: 'https://scanner.example', version: '1' }

for (const schema of [false, true]) {
  test(`a global ID in another argument does not choose the target (${schema ? 'with' : 'without'} the schema)`, async (t) => {
    const g = await startGraphqlGate(t, { tokens: TOKENS, schema })
    for (const input of [
      { clientMutationId: 'gid://gitlab/Vulnerability/1', project: 'gid://gitlab/Project/300', name: 'n', description: 'd', scanner, identifiers: [] },
      { name: 'gid://gitlab/Project/200', project: 'gid://gitlab/Project/300', description: 'd', scanner, identifiers: [] },
      { description: 'gid://gitlab/Project/200', scanner: { ...scanner, id: 'gid://gitlab/Project/200' }, project: 'gid://gitlab/Project/300', name: 'n', identifiers: [] }
    ]) {
      const answer = await postGraphql(g.url, { query: CREATE, variables: { input } }, pat)
      assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${JSON.stringify(input)}: ${answer.text}`)
      assert.equal(answer.body.errors[0].extensions.target, 'project 300')
      // Written in the document rather than in variables: the same.
      const literal = CREATE.replace('$input: VulnerabilityCreateInput!', '').replace('()', '').replace('$input', JSON.stringify(input).replace(/"(\w+)":/g, '$1:'))
      const inDocument = await postGraphql(g.url, { query: literal }, pat)
      assert.equal(inDocument.body?.errors?.[0]?.extensions?.target, 'project 300', `${literal}: ${inDocument.text}`)
    }
    assert.equal(g.upstream.length, 0)
    // The token's own project, with or without another global ID beside it, goes on to GitLab.
    for (const input of [
      { clientMutationId: 'gid://gitlab/Vulnerability/1', project: 'gid://gitlab/Project/200', name: 'n', description: 'd', scanner, identifiers: [] },
      { project: 'gid://gitlab/Project/200', name: 'acme/lib', description: 'gid://gitlab/Project/200', scanner, identifiers: [] }
    ]) {
      const answer = await postGraphql(g.url, { query: CREATE, variables: { input } }, pat)
      assert.deepEqual(answer.body, { data: { upstream: true } }, `${JSON.stringify(input)}: ${answer.text}`)
    }
  })
}

test('a field naming more projects than any GitLab field takes is refused, not checked at each', async (t) => {
  // Every target is checked for the field and all under it: thousands of global IDs in one
  // input (variables count toward no document limit) once multiplied the analysis by as many.
  const g = await startGraphqlGate(t, { tokens: { 'glpat-all': { userId: 7, scopes: [{ access: 'all_memberships', permissions: ['create_vulnerability'] }] } } })
  const input = (n: number): Record<string, unknown> => ({ project: 'gid://gitlab/Project/200', name: 'n', ...Object.fromEntries(Array.from({ length: n - 1 }, (_, i) => [`k${i}`, `gid://gitlab/Project/${1000 + i}`])) })
  const many = await postGraphql(g.url, { query: CREATE, variables: { input: input(9) } }, { 'private-token': 'glpat-all' })
  assert.equal(many.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_DOCUMENT_INVALID', many.text)
  assert.match(many.body.errors[0].message, /name more than 8 projects, groups or namespaces/)
  const eight = await postGraphql(g.url, { query: CREATE, variables: { input: input(8) } }, { 'private-token': 'glpat-all' })
  assert.deepEqual(eight.body, { data: { upstream: true } }, eight.text)
  assert.equal(g.upstream.length, 1)
})
