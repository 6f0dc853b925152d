// Fine-grained personal access tokens at /api/graphql: what a document touches, read as GitLab
// runs it — aliases, fragments, inline fragments on interfaces (with GitLab's schema),
// `__typename`, introspection, the operation operationName selects, and every transport GitLab
// accepts (GET ?query=, application/graphql, batches).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  // Reads acme/lib, its vulnerabilities and runners; creates nothing.
  'glpat-lib': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'read_vulnerability', 'read_runner'], project_id: 200 }] },
  // Reads acme/lib and creates vulnerabilities there.
  'glpat-lib-writer': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'create_vulnerability', 'read_vulnerability'], project_id: 200 }] }
}
const pat = (token: string): Record<string, string> => ({ 'private-token': token })

test('aliases and named fragments do not hide a field: the catalog name and the target are what count', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const aliased = await postGraphql(g.url, { query: '{ mine: project(fullPath: "acme/lib") { id } theirs: project(fullPath: "other/tools") { id } }' }, pat('glpat-lib'))
  assert.equal(aliased.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.equal(aliased.body.errors[0].extensions.target, 'project other/tools')
  const viaFragment = await postGraphql(g.url, { query: 'query { ...Root } fragment Root on Query { x: project(fullPath: "other/tools") { id } }' }, pat('glpat-lib'))
  assert.equal(viaFragment.body.errors[0].extensions.permission, 'read_project')
  const inline = await postGraphql(g.url, { query: 'mutation { ... on Mutation { made: vulnerabilityCreate(input: { project: "gid://gitlab/Project/200", name: "n" }) { errors } } }' }, pat('glpat-lib'))
  assert.equal(inline.body.errors[0].extensions.permission, 'create_vulnerability', 'a mutation inside an inline fragment at the root')
  assert.equal(inline.body.errors[0].extensions.refused, 'mutation vulnerabilityCreate')
  const allowed = await postGraphql(g.url, { query: 'mutation M { v: vulnerabilityCreate(input: { project: "gid://gitlab/Project/200", name: "n" }) { errors } }' }, pat('glpat-lib-writer'))
  assert.deepEqual(allowed.body, { data: { upstream: true } })
  assert.equal(g.upstream.length, 1)
})

test('with GitLab\'s schema: nested fields, types behind fragments and interfaces are checked; payloads and connections need nothing', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, schema: true })
  const nested = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id vulnerabilities { nodes { title } } runners { nodes { id } } } }' }, pat('glpat-lib'))
  assert.deepEqual(nested.body, { data: { upstream: true } }, 'Project, Vulnerability, CiRunner: all granted; connections need nothing')
  const writer = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { runners { nodes { id } } } }' }, pat('glpat-lib-writer'))
  assert.equal(writer.body.errors[0].extensions.permission, 'read_runner', 'a nested field the root-only reading would miss')
  // An interface field: each object type it may return is checked; MergeRequest is not listed.
  const iface = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { noteables { id ... on Vulnerability { title } } } }' }, pat('glpat-lib'))
  assert.equal(iface.body.errors[0].extensions.code, 'GRAPHQL_NOT_IN_CATALOG')
  assert.match(iface.body.errors[0].extensions.refused, /^type /)
  assert.doesNotMatch(iface.body.errors[0].message, /GATE_GRAPHQL_SCHEMA is not set/)
  const payload = await postGraphql(g.url, { query: 'mutation { vulnerabilityCreate(input: { project: "gid://gitlab/Project/200", name: "n" }) { vulnerability { id } errors } }' }, pat('glpat-lib-writer'))
  assert.deepEqual(payload.body, { data: { upstream: true } }, 'the payload type wraps the vulnerability, which is granted')
  assert.equal(g.upstream.length, 2)
})

test('__typename and introspection are GitLab\'s schema, not its data: allowed, with or without a schema', async (t) => {
  for (const schema of [false, true]) {
    const g = await startGraphqlGate(t, { tokens: TOKENS, schema })
    const typename = await postGraphql(g.url, { query: '{ __typename project(fullPath: "acme/lib") { __typename id } }' }, pat('glpat-lib'))
    assert.deepEqual(typename.body, { data: { upstream: true } })
    const introspection = await postGraphql(g.url, { query: 'query IntrospectionQuery { __schema { queryType { name } types { name kind fields { name type { name ofType { name } } } } } __type(name: "Project") { name } }', operationName: 'IntrospectionQuery' }, pat('glpat-lib'))
    assert.deepEqual(introspection.body, { data: { upstream: true } }, `introspection (schema: ${schema})`)
    // Introspection next to a field the token may not read is still refused.
    const mixed = await postGraphql(g.url, { query: '{ __schema { types { name } } project(fullPath: "other/tools") { id } }' }, pat('glpat-lib'))
    assert.equal(mixed.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
    assert.equal(g.upstream.length, 2)
  }
})

test('operationName: the operation GitLab runs is checked; without one, every operation', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const doc = 'query Read { project(fullPath: "acme/lib") { id } } mutation Write { vulnerabilityCreate(input: { project: "gid://gitlab/Project/200", name: "n" }) { errors } }'
  const read = await postGraphql(g.url, { query: doc, operationName: 'Read' }, pat('glpat-lib'))
  assert.deepEqual(read.body, { data: { upstream: true } }, 'the mutation beside it is not run')
  const hidden = await postGraphql(g.url, { query: doc, operationName: 'Write' }, pat('glpat-lib'))
  assert.equal(hidden.body.errors[0].extensions.permission, 'create_vulnerability', 'the second operation, selected by name')
  const unnamed = await postGraphql(g.url, { query: doc }, pat('glpat-lib'))
  assert.equal(unnamed.body.errors[0].extensions.permission, 'create_vulnerability', 'no operationName: all are checked')
  const missing = await postGraphql(g.url, { query: doc, operationName: 'Nope' }, pat('glpat-lib'))
  assert.equal(missing.body.errors[0].extensions.code, 'GRAPHQL_OPERATION_NOT_FOUND')
  // The URL's operationName overrides the body's, as Rails merges them.
  const fromUrl = await postGraphql(g.url, { query: doc, operationName: 'Read' }, pat('glpat-lib'), '/api/graphql?operationName=Write')
  assert.equal(fromUrl.body.errors[0].extensions.permission, 'create_vulnerability')
  assert.equal(g.upstream.length, 1)
})

test('transports: GET ?query=, application/graphql, form bodies, and variables carrying the project path', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const get = await fetch(`${g.url}/api/graphql?query=${encodeURIComponent('{ project(fullPath: "other/tools") { id } }')}`, { headers: pat('glpat-lib') })
  const getBody = await get.json() as any
  assert.equal(get.status, 200)
  assert.equal(getBody.errors[0].extensions.permission, 'read_project')
  const getOk = await fetch(`${g.url}/api/graphql?query=${encodeURIComponent('query($p: ID!) { project(fullPath: $p) { id } }')}&variables=${encodeURIComponent('{"p":"acme/lib"}')}`, { headers: pat('glpat-lib') })
  assert.deepEqual(await getOk.json(), { data: { upstream: true } })
  const bare = await postGraphql(g.url, '{ project(fullPath: "other/tools") { id } }', { ...pat('glpat-lib'), 'content-type': 'application/graphql' })
  assert.equal(bare.body.errors[0].extensions.permission, 'read_project', 'the body is the document')
  const form = await postGraphql(g.url, `query=${encodeURIComponent('query($p: ID!) { project(fullPath: $p) { id } }')}&variables[p]=other%2Ftools`, { ...pat('glpat-lib'), 'content-type': 'application/x-www-form-urlencoded' })
  assert.equal(form.body.errors[0].extensions.target, 'project other/tools', 'Rack\'s nested names in a form body')
  // A default value in the document is a variable too.
  const defaulted = await postGraphql(g.url, { query: 'query($p: ID! = "other/tools") { project(fullPath: $p) { id } }' }, pat('glpat-lib'))
  assert.equal(defaulted.body.errors[0].extensions.target, 'project other/tools')
  assert.equal(g.upstream.length, 1)
})

test('a batch mixing allowed and refused operations is answered whole by the gate, in order', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const batch = [
    { query: '{ project(fullPath: "acme/lib") { id } }' },
    { query: 'query($p: ID!) { project(fullPath: $p) { id } }', variables: { p: 'other/tools' } },
    { query: '{ __typename }' }
  ]
  const answer = await postGraphql(g.url, batch, pat('glpat-lib'))
  assert.equal(answer.status, 200)
  assert.ok(Array.isArray(answer.body), 'an array, one result per operation')
  assert.equal(answer.body.length, 3)
  assert.equal(answer.body[0].errors[0].extensions.code, 'GRAPHQL_BATCH_NOT_RUN')
  assert.equal(answer.body[1].errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING')
  assert.equal(answer.body[1].errors[0].extensions.target, 'project other/tools')
  assert.equal(answer.body[2].errors[0].extensions.code, 'GRAPHQL_BATCH_NOT_RUN')
  for (const r of answer.body) assert.equal(r.data, null)
  assert.equal(g.upstream.length, 0, 'never a partial forward')
  const fine = await postGraphql(g.url, [batch[0], batch[2]], pat('glpat-lib'))
  assert.deepEqual(fine.body, { data: { upstream: true } }, 'an allowed batch is forwarded as sent')
  assert.equal(g.upstream.length, 1)
})

test('documents over the limits, and documents that do not parse, are refused with a clear error; the gate still serves', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const deep = '{ project(fullPath: "acme/lib") { ' + 'group { '.repeat(40) + 'id' + ' }'.repeat(40) + ' } }'
  const tooDeep = await postGraphql(g.url, { query: deep }, pat('glpat-lib'))
  assert.equal(tooDeep.body.errors[0].extensions.code, 'GRAPHQL_DOCUMENT_TOO_DEEP')
  assert.match(tooDeep.body.errors[0].message, /depth/)
  const nested = await postGraphql(g.url, { query: '{'.repeat(10_000) + '}'.repeat(10_000) }, pat('glpat-lib'))
  assert.equal(nested.body.errors[0].extensions.code, 'GRAPHQL_DOCUMENT_TOO_DEEP')
  const big = await postGraphql(g.url, { query: `{ project(fullPath: "acme/lib") { id } } # ${'x'.repeat(50_000)}` }, pat('glpat-lib'))
  assert.equal(big.body.errors[0].extensions.code, 'GRAPHQL_DOCUMENT_TOO_LARGE')
  const broken = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id }' }, pat('glpat-lib'))
  assert.equal(broken.body.errors[0].extensions.code, 'GRAPHQL_DOCUMENT_INVALID')
  const badVariables = await postGraphql(g.url, { query: '{ __typename }', variables: '{not json' }, pat('glpat-lib'))
  assert.equal(badVariables.body.errors[0].extensions.code, 'GRAPHQL_VARIABLES_INVALID')
  assert.equal(g.upstream.length, 0)
  const after = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id } }' }, pat('glpat-lib'))
  assert.deepEqual(after.body, { data: { upstream: true } })
})
