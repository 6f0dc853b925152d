// Finding: Workhorse reads GraphQL uploads (`POST /api/graphql`, multipart) with Go's
// mime/multipart, whose NextPart() decodes a part sent with `Content-Transfer-Encoding:
// quoted-printable`, and writes the field again, decoded, for Rails. For a body over 1 MiB the
// gate searched the bytes as sent for the names it binds (package deletes, model registry
// mutations, job token allowlist mutations), and read the parts themselves only for a request
// carrying a token. An `operations` part written `destroyPac=6Bage` named nothing to it: a
// Developer's upload sent with the browser session deleted a package the project keeps to
// Maintainers, and an allowlist mutation reached GitLab, which must never receive one.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gateWithPackageRule, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { goMultipart, goUnavailable } from '../helpers/go-multipart.ts'
import { requireTool } from '../helpers/require-tool.ts'

const B = 'encoded-operations-boundary'
const type = { 'content-type': `multipart/form-data; boundary=${B}` }
const session = { cookie: `_gitlab_session=${USERS.developer}`, 'x-csrf-token': 'csrf' }
const DELETE = 'mutation($file: Upload) { destroyPackage(input: {id: "gid://gitlab/Packages::Package/1"}) { errors } }'
const ALLOWLIST = 'mutation($file: Upload) { ciJobTokenScopeAddProject(input: {projectPath: "acme/lib", targetProjectPath: "other/tools"}) { errors } }'

/** Quoted-printable as Go's mime/quotedprintable reads it: each letter of `word` as `=XX`. */
const qp = (query: string, word: string): string => query.replace(word, [...word].map(c => '=' + c.charCodeAt(0).toString(16).toUpperCase()).join(''))

function upload (operationsHeaders: readonly string[], operations: string): Buffer {
  return Buffer.from(
    `--${B}\r\n${operationsHeaders.join('\r\n')}\r\n\r\n${operations}\r\n` +
    `--${B}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.file"]}\r\n` +
    `--${B}\r\nContent-Disposition: form-data; name="0"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n${'x'.repeat(1100 * 1024)}\r\n` +
    `--${B}--\r\n`, 'latin1')
}
const ENCODED = ['Content-Disposition: form-data; name="operations"', 'Content-Transfer-Encoding: quoted-printable']
const CASES: ReadonlyArray<readonly [string, Buffer]> = [
  ['destroyPackage, quoted-printable', upload(ENCODED, JSON.stringify({ query: qp(DELETE, 'destroyPackage'), variables: { file: null } }))],
  ['ciJobTokenScopeAddProject, quoted-printable', upload(ENCODED, JSON.stringify({ query: qp(ALLOWLIST, 'ciJobTokenScopeAddProject'), variables: { file: null } }))],
  ['destroyPackage, a soft line break', upload(['Content-Disposition: form-data; name="operations"', 'content-transfer-encoding: Quoted-Printable'], JSON.stringify({ query: DELETE, variables: { file: null } }).replace('destroyPackage', 'destroy=\r\nPackage'))]
]

test('Workhorse reads these uploads\' operations decoded, naming the mutation', t => {
  if (!requireTool(t, goUnavailable())) return
  const readings = goMultipart(CASES.map(([, body]) => ({ boundary: B, body })))
  CASES.forEach(([name], i) => {
    const operations = readings[i]!.parts.find(p => p.name === 'operations')
    assert.ok(operations !== undefined, name)
    assert.match(operations.value.toString('latin1'), /destroyPackage|ciJobTokenScopeAddProject/, name)
  })
})

test('a large GraphQL upload whose operations part has a transfer encoding is refused, with or without a token', async t => {
  const g = await gateWithPackageRule(t, 'npm', { delete: 'maintainer' })
  g.gitlab.packages.push({ id: 1, name: 'left-pad', version: '1.0.0', packageType: 'npm', projectId: 200, createdAt: '2026-01-01T00:00:00Z' })
  const before = g.seen.length
  for (const [name, body] of CASES) {
    for (const [caller, headers] of [['session', session], ['token', { 'private-token': USERS.developer }]] as const) {
      const res = await send(g.url, 'POST', '/api/graphql', { ...type, ...headers }, body)
      assert.equal(res.status, 400, `${name} (${caller}): ${res.text.slice(0, 300)}`)
      assert.equal(res.json().code, 'GRAPHQL_AMBIGUOUS_REQUEST', `${name} (${caller})`)
    }
  }
  assert.equal(g.seen.slice(before).filter(s => s.url.startsWith('/api/graphql')).length, 0, 'nothing reached GitLab')
  // The same upload with its operations written plainly (a query GitLab's): forwarded.
  const plain = upload(['Content-Disposition: form-data; name="operations"'], JSON.stringify({ query: 'mutation($file: Upload) { uploadThing(file: $file) { errors } }', variables: { file: null } }))
  const res = await send(g.url, 'POST', '/api/graphql', { ...type, ...session }, plain)
  assert.equal(res.status, 200, res.text.slice(0, 300))
  assert.equal(g.seen.slice(before).filter(s => s.url.startsWith('/api/graphql')).length, 1)
})
