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
import { send } from '../helpers/http.ts'
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

test('Go 1.19 refuses these Content-Types, which the newer Go reads the RFC 2231 boundary from', t => {
  if (!requireTool(t, goUnavailable())) return
  for (const [i, reading] of goMultipart(REPEATED.map(contentType => ({ boundary: '', body: uploadBody, contentType }))).entries()) {
    assert.equal(reading.error, 'mime: duplicate parameter name', REPEATED[i])
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
