// Finding: Workhorse reads the multipart bodies of its upload routes (GraphQL and the package
// uploads among them) with net/http's MultipartReader(), whose boundary is Go's
// mime.ParseMediaType of the Content-Type, and writes the parts it read again for Rails under a
// boundary of its own. Go takes an RFC 2231 `boundary*=utf-8''B` (or `boundary*0=B`) over
// `boundary=A`; Rack and the gate read `A`. A body framed by both held, under `A`, the parts the
// gate read, and under `B`, inside one of them, the parts Rails behind Workhorse read: a
// fine-grained token limited to one project ran a mutation on another, and a job token in an
// `access_token` part under `B` reached GitLab on a Developer's upload unread.
// Go after 1.19 (golang/go#48866; Workhorse is built with 1.22 and later) also takes such a
// parameter repeated with an equal value (REPEATED), where 1.19, the Go these tests run, refuses
// the Content-Type (net/http's ErrNotMultipart, on which Workhorse hands Rails the body as sent):
// those cases are the newer Go's reading, written out.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send, sendChunked } from '../helpers/http.ts'
import { goMultipart, goUnavailable } from '../helpers/go-multipart.ts'
import { requireTool } from '../helpers/require-tool.ts'

const A = 'gate-boundary'
const B = 'go-boundary'
const TYPES = [
  `multipart/form-data; boundary=${A}; boundary*=utf-8''${B}`,
  `multipart/form-data; boundary*=us-ascii'en'${B}; boundary=${A}`,
  `multipart/form-data; boundary=${A}; boundary*0=${B}`,
  `multipart/form-data; boundary=${A}; boundary*0*=utf-8''${B}`
]
const REPEATED = [
  `multipart/form-data; boundary=${A}; boundary*=utf-8''${B}; boundary*=utf-8''${B}`,
  `multipart/form-data; boundary*0=${B}; boundary=${A}; boundary*0="${B}"`
]
const part = (boundary: string, name: string, value: string, filename?: string): string =>
  `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename === undefined ? '' : `; filename="${filename}"`}\r\n\r\n${value}\r\n`
/** Parts framed by `A`, and inside the last of them parts framed by `B`. */
const framed = (gateParts: string, goParts: string): Buffer =>
  Buffer.from(gateParts + part(A, 'note', goParts + `--${B}--`) + `--${A}--\r\n`)

const FINE: Record<string, FakeToken> = {
  'glpat-vuln': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['create_vulnerability'], project_id: 200 }] }
}
const mutation = (project: number): string => JSON.stringify({ query: `mutation { vulnerabilityCreate(input: {project: "gid://gitlab/Project/${project}", name: "x"}) { errors } }` })
const graphqlBody = framed(part(A, 'operations', mutation(200)), part(B, 'operations', mutation(300)))

const LIB_UPLOAD = '/api/v4/projects/200/packages/pypi'
const DEVELOPER = 'glpat-lib-developer-0000000000'
const users = { [DEVELOPER]: { id: 51, username: 'dev', access: { 200: 30 } } }
const uploadBody = framed(part(A, 'name', 'pkg') + part(A, 'content', 'data', 'pkg-1.0.tar.gz'), part(B, 'access_token', TOKENS.tools) + part(B, 'content', 'data', 'pkg-1.0.tar.gz'))

test('Go reads these Content-Types\' boundary as the RFC 2231 one, and the parts it frames', t => {
  if (!requireTool(t, goUnavailable())) return
  const readings = goMultipart(TYPES.flatMap(contentType => [{ boundary: '', body: graphqlBody, contentType }, { boundary: '', body: uploadBody, contentType }]))
  TYPES.forEach((type, i) => {
    const graphql = readings[2 * i]!
    const upload = readings[2 * i + 1]!
    assert.equal(graphql.error, undefined, type)
    assert.deepEqual(graphql.parts.map(p => [p.name, p.value.toString()]), [['operations', mutation(300)]], type)
    assert.deepEqual(upload.parts.map(p => [p.name, p.file === '' ? p.value.toString() : p.file]), [['access_token', TOKENS.tools], ['content', 'pkg-1.0.tar.gz']], type)
  })
})

test('Go 1.19 reads these Content-Types as no multipart (a duplicate parameter), where the newer Go reads the RFC 2231 boundary', t => {
  if (!requireTool(t, goUnavailable())) return
  for (const [i, reading] of goMultipart(REPEATED.map(contentType => ({ boundary: '', body: uploadBody, contentType }))).entries()) {
    // net/http's MultipartReader() answers ErrNotMultipart for a type ParseMediaType refuses.
    assert.equal(reading.error, "request Content-Type isn't multipart/form-data", REPEATED[i])
  }
})

test('a GraphQL request whose Content-Type Go reads another boundary from is refused', async t => {
  const g = await startGraphqlGate(t, { tokens: FINE })
  for (const type of [...TYPES, ...REPEATED]) {
    const answer = await postGraphql(g.url, graphqlBody, { 'private-token': 'glpat-vuln', 'content-type': type })
    assert.equal(answer.status, 400, `${type}: ${answer.text}`)
    assert.equal(answer.body.code, 'GRAPHQL_AMBIGUOUS_REQUEST', type)
  }
  assert.equal(g.upstream.length, 0)
  // One boundary, as clients write it: decided and forwarded.
  const plain = await postGraphql(g.url, Buffer.from(part(A, 'operations', mutation(200)) + `--${A}--\r\n`), { 'private-token': 'glpat-vuln', 'content-type': `multipart/form-data; boundary=${A}` })
  assert.deepEqual(plain.body, { data: { upstream: true } }, plain.text)
})

test('an upload whose Content-Type Go reads another boundary from is refused', async t => {
  const g = await startTestGate(t, {}, { users })
  for (const type of [...TYPES, ...REPEATED]) {
    const answer = await send(g.url, 'POST', LIB_UPLOAD, { 'content-type': type, 'private-token': DEVELOPER }, uploadBody)
    assert.equal(answer.status, 400, `${type}: ${answer.text}`)
    assert.equal(answer.json().code, 'MULTIPART_BAD_BOUNDARY', type)
  }
  assert.equal(g.seen.length, 0, 'no upload reached the upstream')
})

// Finding: Go's mime.ParseMediaType, whose type net/http's MultipartReader() (Workhorse's) must
// read as multipart/form-data or multipart/mixed, trims Unicode white space around it and lowers
// it rune by rune; Rack trims ASCII white space and lowers ASCII letters only. A no-break space
// before the type (the bytes C2 A0), U+3000 or U+0085, or `MULT\u0130PART` (U+0130 lowers to `i`),
// was a type Rack parses no body of, so the gate passed the body unread, while Workhorse read its
// parts and handed them to Rails under a `multipart/form-data` of its own: a job token in an
// `access_token` part reached GitLab on a Developer's PyPI upload, and a fine-grained token's
// mutation on another project reached GitLab behind a document the gate read instead.
/** Header values as the bytes of their UTF-8, which Node sends and reads one byte a character. */
const utf8 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1')
const GO_ONLY = [
  `\u00a0multipart/form-data; boundary=${A}`,
  `\u3000multipart/form-data; boundary=${A}`,
  `\u0085multipart/form-data; boundary=${A}`,
  `MULT\u0130PART/FORM-DATA; boundary=${A}`,
  `\u2003multipart/m\u0130xed; boundary=${A}`
].map(utf8)
const goOnlyUpload = Buffer.from(part(A, 'name', 'pkg') + part(A, 'access_token', TOKENS.tools) + part(A, 'content', 'data', 'pkg-1.0.tar.gz') + `--${A}--\r\n`)
// The multipart body in a GraphQL block string: a document to the gate, a preamble to Go.
const goOnlyGraphql = Buffer.from(`query($x: String = """\r\n${part(A, 'operations', mutation(300))}${part(A, 'map', '{}')}--${A}--\r\n""") { __typename }`)

test('Go reads these Content-Types as multipart, Rack as no type it parses a body of', t => {
  if (!requireTool(t, goUnavailable())) return
  const readings = goMultipart(GO_ONLY.flatMap(type => [goOnlyUpload, goOnlyGraphql].map(body => ({ boundary: '', body, contentType: Buffer.from(type, 'latin1').toString('utf8') }))))
  GO_ONLY.forEach((type, i) => {
    const upload = readings[2 * i]!
    const graphql = readings[2 * i + 1]!
    assert.equal(upload.error, undefined, type)
    assert.deepEqual(upload.parts.map(p => [p.name, p.file === '' ? p.value.toString() : p.file]), [['name', 'pkg'], ['access_token', TOKENS.tools], ['content', 'pkg-1.0.tar.gz']], type)
    assert.deepEqual(graphql.parts.map(p => [p.name, p.value.toString()]), [['operations', mutation(300)], ['map', '{}']], type)
  })
  // What Go reads as no multipart, Workhorse passes on unread (http.ErrNotMultipart).
  const [related] = goMultipart([{ boundary: '', body: goOnlyUpload, contentType: `multipart/related; boundary=${A}` }])
  assert.match(related!.error ?? '', /isn't multipart/)
})

test('an upload whose Content-Type only Go reads as multipart is refused', async t => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'sent' }, { users })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  for (const type of GO_ONLY) {
    const headers = { 'content-type': type, 'private-token': DEVELOPER }
    const buffered = await send(g.url, 'POST', LIB_UPLOAD, headers, goOnlyUpload)
    assert.equal(buffered.status, 400, `${type}: ${buffered.text}`)
    assert.equal(buffered.json().code, 'MULTIPART_BAD_BOUNDARY', type)
    const streamed = await sendChunked(g.url, LIB_UPLOAD, headers, [goOnlyUpload])
    assert.equal(streamed.status, 400, `${type}, streamed: ${streamed.body}`)
    const decided = await send(auth, 'POST', LIB_UPLOAD, headers, goOnlyUpload)
    assert.equal(decided.status, 400, `${type}, forward-auth: ${decided.text}`)
  }
  assert.equal(g.seen.length, 0, 'no upload reached the upstream')
  // Behind a proxy that sends no body: a multipart body the gate cannot see.
  const hidden = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' }, { users })
  for (const type of GO_ONLY) {
    const answer = await send(`http://127.0.0.1:${hidden.gate.authAddress()!.port}`, 'GET', '/', { 'x-original-method': 'POST', 'x-original-uri': LIB_UPLOAD, 'x-original-content-length': String(goOnlyUpload.length), 'content-type': type, 'private-token': DEVELOPER })
    assert.equal(answer.status, 403, `${type}, hidden: ${answer.text}`)
    assert.equal(answer.json().code, 'BODY_NOT_VISIBLE', type)
  }
})

test('a GraphQL request whose Content-Type only Go reads as multipart is refused', async t => {
  const g = await startGraphqlGate(t, { tokens: FINE })
  // An upload's size too, past the bytes the gate reads whole (a fine-grained token may send no
  // such body at all: here a session's, which GitLab signs in from the cookie).
  const large = Buffer.from(`query($x: String = """\r\n${part(A, 'operations', mutation(300))}${part(A, 'map', '{}')}${part(A, 'pad', 'x'.repeat(1200 * 1024), 'a.bin')}--${A}--\r\n""") { __typename }`)
  // Multipart to Rack too, but not of a subtype it parses, and to Go form-data: refused alike.
  for (const type of [...GO_ONLY, utf8(`multipart/form-data\u00a0; boundary=${A}`)]) {
    for (const [body, caller] of [[goOnlyGraphql, { 'private-token': 'glpat-vuln' }], [large, {}]] as const) {
      const answer = await postGraphql(g.url, body, { ...caller, 'content-type': type })
      assert.equal(answer.status, 400, `${type}, ${body.length} bytes: ${answer.text}`)
      assert.equal(answer.body.code, 'GRAPHQL_AMBIGUOUS_REQUEST', type)
    }
  }
  assert.equal(g.upstream.length, 0)
})
