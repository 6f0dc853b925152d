// Regression: a JSON body that JSON.parse refuses but Ruby's JSON reads. Rails parses
// `application/json` with Ruby's json, which skips `/* */` and `//` comments, so the body
// `[{"query": "{ currentUser { id } }"}] /* c */` is a batch to GitLab, and a batch wins over the
// URL's `query`. The gate read no parameter from it: under `?query=<ciJobTokenScopeRemoveProject>`
// it answered the URL's mutation and removed the entry, where GitLab's stack runs the body's
// batch (the shape refused as ambiguous when the body parses). Such a body now counts as a
// reading that runs what the gate cannot see: beside the gate's fields, 400
// GRAPHQL_AMBIGUOUS_REQUEST. A fine-grained token's request with one is refused by the GraphQL
// decision itself (400 BODY_NOT_PARSEABLE, as the identity stage answers it too). A body Ruby
// refuses at its first byte (a gzip stream) runs nothing in GitLab and stands in no one's way.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { readGraphqlParams } from '../../src/admin/graphql.ts'
import type { TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { ADMIN, adminGate } from '../helpers/admin-gate.ts'
import { startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const q = encodeURIComponent
const REMOVE_APP = 'mutation { ciJobTokenScopeRemoveProject(input: {projectPath: "acme/lib", targetProjectPath: "acme/platform/app"}) { errors } }'
const SEEDED = ['project:100', 'group:10']
const json = { 'content-type': 'application/json' }

async function entries (g: TestGate): Promise<string[]> {
  return ((await g.store.get(200))?.entries ?? []).map(e => `${e.targetType}:${e.targetId}`)
}

const commented: Array<[string, string]> = [
  ['a batch followed by a comment', '[{"query": "{ currentUser { id } }"}] /* c */'],
  ['a comment, then `_json`', '/* c */ {"_json": [{"query": "{ currentUser { id } }"}]}'],
  ['a line comment inside the object', '{"_json": [{"query": "{ currentUser { id } }"}] // c\n}']
]

for (const [what, body] of commented) {
  test(`GraphQL: the URL's allowlist mutation over a JSON body Ruby reads and JSON.parse does not (${what}) is ambiguous, nothing changed`, async t => {
    const g = await adminGate(t)
    const res = await send(g.url, 'POST', `/api/graphql?query=${q(REMOVE_APP)}`, { ...json, 'private-token': ADMIN }, body)
    assert.equal(res.status, 400, res.text)
    assert.equal(res.json().code, 'GRAPHQL_AMBIGUOUS_REQUEST', res.text)
    assert.deepEqual(await entries(g), SEEDED)
    assert.deepEqual(g.seen.filter(s => s.url.includes('graphql')), [], 'not forwarded')
  })
}

test('GraphQL: a body Ruby refuses at its first byte (gzip, a BOM) runs nothing, and is no reading of its own', () => {
  for (const body of [gzipSync(JSON.stringify({ query: '{ a }' })), Buffer.from('\ufeff{"query": "{ a }"}'), Buffer.from('x')]) {
    assert.equal(readGraphqlParams(body, { method: 'POST', query: '', contentType: 'application/json', bodyReadable: true }).unparsedBody, false)
  }
  for (const [, body] of commented) assert.equal(readGraphqlParams(Buffer.from(body), { method: 'POST', query: '', contentType: 'application/json; charset=utf-8', bodyReadable: true }).unparsedBody, true)
  // A type Rails does not parse gives no parameters, whatever it holds.
  assert.equal(readGraphqlParams(Buffer.from(commented[0]![1]), { method: 'POST', query: '', contentType: 'text/plain', bodyReadable: true }).unparsedBody, false)
})

test('GraphQL: a fine-grained token\'s request with such a body is refused by the GraphQL decision, nothing forwarded', async t => {
  const tokens: Record<string, FakeToken> = {
    'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
  }
  const g = await startGraphqlGate(t, { tokens })
  const res = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': 'glpat-lib-reader' }, '{"query": "{ project(fullPath: \\"other/tools\\") { id } }" /* c */}')
  assert.equal(res.status, 400, res.text)
  assert.equal(res.json().code, 'BODY_NOT_PARSEABLE')
  assert.match(res.json().message, /GraphQL request's JSON body/)
  assert.equal(g.upstream.length, 0)
})
