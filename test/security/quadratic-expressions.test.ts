// Finding: regular expressions over input the gate does not control that backtrack over a long
// run of one character, in quadratic time. The worst: decoding JSON escapes after any number of
// backslashes (`/\\+u([0-9a-fA-F]{4})/g`) in a GraphQL body over 1 MiB took minutes for a MiB of
// backslashes, without any credential, holding every request through the gate (below, end to
// end). Others, found by scanning every expression of src/ with recheck: the multipart
// boundary of a Content-Type header (114 ms for 16 KiB), Rack's Content-Type and Rack 3.0's
// Content-Disposition readings of part headers (7 and 14 ms per 16 KiB part, for every part of
// an upload), and three trims of the form `/^x+|x+$/g`, which backtrack over every run of `x`
// that is not at the end.
// A GraphQL path target of 400,000 slashes before a letter (a variable of a fine-grained token's
// request, well under the 1 MiB body) held the event loop, and so every request, for about a
// minute; a multipart part header of 16 KiB of spaces cost 90 ms per part in the credential
// guard, for as many parts as an upload holds. Each is now linear (src/text.ts), and a target
// longer than any GitLab path (8,192 characters) is not found without asking GitLab a URL it
// would refuse. The time bounds below are hang detectors: the code takes milliseconds, the
// quadratic trims took seconds to minutes for the same input.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { classifyGraphql, rubyLexDifference } from '../../src/admin/graphql.ts'
import { scanMultipart } from '../../src/identity/multipart.ts'
import { trimEnds } from '../../src/text.ts'
import { startTestGate } from '../helpers/gate.ts'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { send } from '../helpers/http.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
}

test('trimEnds trims the ends only, whatever the runs inside', () => {
  assert.equal(trimEnds('//a//b//', '/'), 'a//b')
  assert.equal(trimEnds(' \t x y \t', ' \t'), 'x y')
  assert.equal(trimEnds('////', '/'), '')
  assert.equal(trimEnds('', '/'), '')
  const s = 'a' + '/'.repeat(400_000) + 'b'
  const started = performance.now()
  assert.equal(trimEnds(s, '/'), s, 'nothing at the ends: the same string')
  // A hang detector: `/^\/+|\/+$/g` took about a minute on this string; the walk, well under 1 ms.
  assert.ok(performance.now() - started < 5_000, 'linear in the runs inside')
})

test('a GraphQL target path of 400,000 slashes before a letter is not found, without holding the gate or asking GitLab', { timeout: 60_000 }, async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const started = performance.now()
  const answer = await postGraphql(g.url, {
    query: 'query($p: ID!) { project(fullPath: $p) { id } }',
    variables: { p: 'acme' + '/'.repeat(400_000) + 'lib' }
  }, { 'private-token': 'glpat-reader' })
  const ms = performance.now() - started
  assert.equal(answer.status, 200, answer.text.slice(0, 300))
  assert.equal(answer.body.data, null)
  assert.match(answer.body.errors[0].message, /was not found/, 'refused: no project of GitLab\'s is that long')
  assert.ok(ms < 10_000, `answered in ${ms.toFixed(0)} ms (the quadratic trim took about a minute)`)
  // The gate still answers others at once.
  const other = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id } }' }, { 'private-token': 'glpat-reader' })
  assert.deepEqual(other.body, { data: { upstream: true } })
})

test('multipart part headers of 16 KiB of spaces before a last word are read in linear time', () => {
  const b = 'trim-boundary'
  const part = `--${b}\r\nX-Pad: a${' '.repeat(16_000)}b\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n`
  // 30 parts a body: their headers stay within the 512 KiB a body's parts may hold together.
  const body = Buffer.from(part.repeat(30) + `--${b}--\r\n`, 'latin1')
  const started = performance.now()
  for (let i = 0; i < 7; i++) assert.deepEqual(scanMultipart(body, b).credentials, [])
  const ms = performance.now() - started
  assert.ok(ms < 5_000, `210 parts in ${ms.toFixed(0)} ms (the quadratic trim took about 18 s for 200)`)
})

test('a GraphQL body over 1 MiB with a MiB of backslashes in its first part is answered at once, without any credential', { timeout: 60_000 }, async (t) => {
  const g = await startTestGate(t)
  const b = 'bs-boundary'
  // The gate's field spelled with an escape, so the escapes must be decoded to see it.
  const body = `--${b}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{"query":"ci\\u004aobTokenScopeX ${'\\'.repeat(1 << 20)}x"}\r\n` +
    `--${b}\r\nContent-Disposition: form-data; name="0"; filename="a"\r\n\r\n${'z'.repeat(300_000)}\r\n--${b}--\r\n`
  const started = performance.now()
  const answer = await send(g.url, 'POST', '/api/graphql', { 'content-type': `multipart/form-data; boundary=${b}` }, body)
  const ms = performance.now() - started
  assert.equal(answer.status, 400, answer.text)
  assert.equal(answer.json().code, 'GRAPHQL_MIXED_OPERATION')
  assert.ok(ms < 20_000, `answered in ${ms.toFixed(0)} ms (minutes before)`)
})

test('a million comments ended by a carriage return are checked in linear time; a MiB of them classifies at once', () => {
  // Each comment ended by a lone CR is checked for the line feed GitLab's parser reads on to. The
  // first version searched from every comment before a token to that line feed: quadratic (here
  // 300 ms for 100,000 comments, 2.3 s for 300,000, 47 s for 1,000,000).
  const comments = (n: number, after: string): string => '#c\r'.repeat(n) + '\n' + after
  const started = performance.now()
  assert.equal(rubyLexDifference(comments(1_000_000, '{ a }')), null, 'an LF before the field: read alike')
  // A hang detector: about a third of a second here.
  assert.ok(performance.now() - started < 10_000, 'linear in the comments')
  // The allowlist classifier reads what GitLab would run, up to 10,000 characters: a MiB of them
  // is refused unread.
  const mutation = 'mutation { ciJobTokenScopeRemoveProject(input: {projectPath: "a/b", targetProjectPath: "c/d"}) { errors } }'
  assert.equal(classifyGraphql(Buffer.from(JSON.stringify({ query: comments(3_000, mutation) }))).kind, 'gate')
  const large = classifyGraphql(Buffer.from(JSON.stringify({ query: comments(340_000, mutation) })))
  assert.equal(large.kind === 'refused' && large.code, 'GRAPHQL_DOCUMENT_TOO_LARGE')
})
