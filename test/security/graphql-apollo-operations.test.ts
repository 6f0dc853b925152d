// Regression: GitLab's upload middleware (apollo_upload_server's ApolloUploadServer::Middleware)
// takes a GraphQL multipart request's `operations` and writes each of its keys with Rack's
// update_param, over the URL's parameters as well as the body's. The gate read the URL's over
// `operations`, looked for `operations` in the body only, and skipped an `operations` JSON.parse
// refuses: a harmless `?query=` covered the query GitLab ran, and an allowlist mutation in
// `operations` (its name escaped as `\u0053`, or `operations` in the URL) reached GitLab.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
}
const OPERATOR = 'gate-operator-token-apollo'
const OTHER = '{ project(fullPath: "other/tools") { id } }'
const OWN = '{ project(fullPath: "acme/lib") { id } }'
const MUTATION = 'mutation { ciJobTokenScopeAddGroupOrProject(input: {projectPath: "acme/lib", targetPath: "other"}) { errors } }'
const BOUNDARY = 'apollo-boundary'
const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`

function multipart (fields: ReadonlyArray<readonly [string, string]>): string {
  return fields.map(([name, value]) => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`).join('') + `--${BOUNDARY}--\r\n`
}

const q = (params: Record<string, string>): string => '/api/graphql?' + new URLSearchParams(params).toString()

test('a fine-grained token: the query in `operations` is checked, not the URL\'s it replaces in GitLab', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const headers = { 'private-token': 'glpat-lib-reader', 'content-type': MULTIPART }
  const cases: Array<[string, string, string]> = [
    ['operations in the body, a query in the URL', multipart([['operations', JSON.stringify({ query: OTHER })], ['map', '{}']]), q({ query: OWN })],
    ['operations and map in the URL, a query in the body', multipart([['query', OWN]]), q({ operations: JSON.stringify({ query: OTHER }), map: '{}' })],
    // `operations` that is no object replaces `_json`: no batch, the single query runs.
    ['a scalar operations undoing a batch', multipart([['_json[][query]', OWN], ['query', OTHER], ['operations', '5'], ['map', '{}']]), '/api/graphql']
  ]
  for (const [what, body, path] of cases) {
    const answer = await postGraphql(g.url, body, headers, path)
    assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${what}: ${answer.text}`)
    assert.equal(answer.body.errors[0].extensions.target, 'project other/tools', what)
  }
  assert.equal(g.upstream.length, 0)
  // An upload as clients send it still goes through.
  const upload = await postGraphql(g.url, multipart([['operations', JSON.stringify({ query: OWN })], ['map', '{}']]), headers)
  assert.deepEqual(upload.body, { data: { upstream: true } }, upload.text)
  assert.equal(g.upstream.length, 1)
})

test('`operations` that JSON.parse refuses (Ruby\'s parser takes comments) is refused, not read as absent', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const body = multipart([['operations', `{"query": ${JSON.stringify(OTHER)} /* Ruby skips this */}`], ['map', '{}']])
  for (const headers of [{ 'private-token': 'glpat-lib-reader' }, {}] as Array<Record<string, string>>) {
    const answer = await postGraphql(g.url, body, { ...headers, 'content-type': MULTIPART })
    assert.equal(answer.status, 400, answer.text)
    assert.equal(answer.body.code, 'GRAPHQL_AMBIGUOUS_REQUEST')
  }
  assert.equal(g.upstream.length, 0)
})

test('an allowlist mutation in `operations` never reaches GitLab', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, env: { GATE_ADMIN_TOKEN: OPERATOR } })
  const escaped = JSON.stringify({ query: MUTATION }).replace('ciJobTokenScope', 'ciJobToken\\u0053cope')
  const cases: Array<[string, string, string, string]> = [
    ['operations and map in the URL', multipart([['query', '{ __typename }']]), MULTIPART, q({ operations: JSON.stringify({ query: MUTATION }), map: '{}' })],
    ['the name escaped in operations, a query in the URL', multipart([['operations', escaped], ['map', '{}']]), MULTIPART, q({ query: '{ __typename }' })],
    // The middleware looks for `multipart/form-data` anywhere in the Content-Type.
    ['a JSON body whose type names multipart/form-data', JSON.stringify({ query: '{ __typename }' }), 'application/json; x=multipart/form-data', q({ operations: JSON.stringify({ query: MUTATION }), map: '{}' })]
  ]
  for (const [what, body, type, path] of cases) {
    const answer = await postGraphql(g.url, body, { 'private-token': OPERATOR, 'content-type': type }, path)
    // The parameters without `operations` applied run `{ __typename }`, a reading the gate checks
    // too: the readings disagree and one is the gate's, so the request is refused as ambiguous.
    assert.equal(answer.status, 400, `${what}: ${answer.text}`)
    assert.equal(answer.body?.code, 'GRAPHQL_AMBIGUOUS_REQUEST', `${what}: ${answer.text}`)
    assert.equal(g.upstream.length, 0, `${what}: forwarded to GitLab`)
  }
})
