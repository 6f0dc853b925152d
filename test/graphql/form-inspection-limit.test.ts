// Why a form body at /api/graphql is read up to 64 KiB where a JSON one is read up to 1 MiB
// (docs/graphql.md, "Form bodies"): the GraphQL handler reads and decides every body up to 1 MiB,
// forms included, but the identity stage then reads a form whole, on every route, only up to
// GATE_MAX_INSPECTED_BODY_BYTES (64 KiB by default) before it forwards it, since a job's token or
// `_method` can be anywhere in a form; JSON and uploads it streams through its guards instead.
// Raising that setting to 1 MiB gives forms at /api/graphql the JSON limit, decided as before.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { send } from '../helpers/http.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
}
const FORM = 'application/x-www-form-urlencoded'
const q = encodeURIComponent
/** A form of `bytes` bytes running `document`, padded with a parameter GitLab does not read. */
const form = (document: string, bytes: number): string => {
  const head = `query=${q(document)}&padding=`
  return head + 'x'.repeat(bytes - head.length)
}
const OWN = '{ project(fullPath: "acme/lib") { id } }'
const OTHER = '{ project(fullPath: "other/tools") { id } }'

test('a 200 KB form at /api/graphql: refused by the identity stage\'s 64 KiB form limit by default', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const sent: Array<Record<string, string>> = [{ 'content-type': FORM }, { 'content-type': FORM, 'private-token': 'glpat-lib-reader' }, {}]
  for (const headers of sent) {
    const res = await send(g.url, 'POST', '/api/graphql', headers, form(OWN, 200_000))
    assert.equal(res.status, 413, res.text)
    assert.equal(res.json().code, 'BODY_TOO_LARGE_TO_INSPECT')
  }
  // The same document as JSON of that size is read and forwarded.
  const json = await send(g.url, 'POST', '/api/graphql', { 'content-type': 'application/json', 'private-token': 'glpat-lib-reader' }, JSON.stringify({ query: OWN, padding: 'x'.repeat(200_000) }))
  assert.equal(json.status, 200, json.text)
  assert.equal(g.upstream.length, 1)
})

test('with GATE_MAX_INSPECTED_BODY_BYTES=1048576, forms up to 1 MiB at /api/graphql are decided and forwarded as JSON bodies are', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, env: { GATE_MAX_INSPECTED_BODY_BYTES: '1048576' } })
  const own = await send(g.url, 'POST', '/api/graphql', { 'content-type': FORM, 'private-token': 'glpat-lib-reader' }, form(OWN, 1_000_000))
  assert.equal(own.status, 200, own.text)
  assert.equal(g.upstream.length, 1)
  assert.equal(g.upstream[0]!.bytes, 1_000_000)
  // Decided whole: a document the token may not run is refused, nothing forwarded.
  const other = await send(g.url, 'POST', '/api/graphql', { 'content-type': FORM, 'private-token': 'glpat-lib-reader' }, form(OTHER, 1_000_000))
  assert.equal(other.status, 200, other.text)
  assert.equal(other.json().errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING')
  // Untyped, read as a form and as the URL's parameters alone: the same.
  const untyped = await send(g.url, 'POST', '/api/graphql', { 'private-token': 'glpat-lib-reader' }, form(OTHER, 1_000_000))
  assert.equal(untyped.json().errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', untyped.text)
  assert.equal(g.upstream.length, 1)
})
