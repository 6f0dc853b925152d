// Fine-grained tokens and GraphQL parameters GitLab reads where a lenient reader would not:
// multipart parts Rack 2.2 names from a second `name=`, an escape, Content-ID or Content-Type, or
// frames at its own CRLF CRLF, and Rack's nested names with a line break in them. Each is read as
// Rack reads it (then checked) or, where parsers could differ, refused; nothing reaches GitLab
// unchecked. test/rack/graphql-multipart.slow.ts compares the readings with Rack itself.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
}
const B = 'XyZ'
const MULTIPART = { 'content-type': `multipart/form-data; boundary=${B}` }
/** Needs create_markdown_upload, which glpat-reader lacks. */
const MUTATION = 'mutation { uploadCreate(input: { projectPath: "acme/lib", file: null }) { errors } }'
const body = (head: string, value = MUTATION): string => `--${B}\r\n${head}\r\n\r\n${value}\r\n--${B}--\r\n`

test('a multipart part that Rack names as query in a way other parsers may not is refused, never forwarded unchecked', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const auth = { ...MULTIPART, 'private-token': 'glpat-reader' }
  // Written plainly, the part is read and its mutation checked.
  const plain = await postGraphql(g.url, body('Content-Disposition: form-data; name="query"'), auth)
  assert.equal(plain.status, 200)
  assert.equal(plain.body.errors[0].extensions.permission, 'create_markdown_upload')
  const doubtful: Record<string, string> = {
    'a filename inside another parameter\'s quotes': body('Content-Disposition: form-data; name=query; x="; filename=y"'),
    'an escape in the quoted name': body('Content-Disposition: form-data; name="qu\\ery"'),
    'Content-ID': body('Content-ID: query'),
    'Content-Type (Rack: query[])': body('Content-Type: query'),
    // Rack 2 finds `name=` after a `;` inside the quotes (query); Rack 3 and Go read the quoted name.
    'a quoted name holding `; name=`': body('Content-Disposition: form-data; name="a; name=query"'),
    // Rack's header block runs to CRLF CRLF: its value is the mutation, a lenient reader's the block string.
    'an empty LF line before CRLF CRLF': `--${B}\r\nContent-Disposition: form-data; name="query"\r\nX-A: b\n\n{ project(fullPath: """\r\n\r\n${MUTATION} # """) { id } }\r\n--${B}--\r\n`,
    'a token in a part named by Content-ID': body('Content-ID: private_token', 'glpat-reader').replace(`--${B}--`, `--${B}\r\nContent-Disposition: form-data; name="query"\r\n\r\n${MUTATION}\r\n--${B}--`)
  }
  for (const [name, text] of Object.entries(doubtful)) {
    const headers = name.startsWith('a token') ? MULTIPART : auth
    const answer = await postGraphql(g.url, text, headers)
    assert.equal(answer.status, 400, name)
    assert.equal(answer.body.code, 'GRAPHQL_AMBIGUOUS_REQUEST', name)
    assert.match(answer.body.message, /"(?:query|private_token)"/, name)
  }
  assert.equal(g.upstream.length, 0, 'nothing forwarded')
  // A plain upload still passes (checked and allowed).
  const allowed = await postGraphql(g.url, body('Content-Disposition: form-data; name="query"', '{ project(fullPath: "acme/lib") { id } }'), auth)
  assert.deepEqual(allowed.body, { data: { upstream: true } })
})

test('a batch whose nested name has a line break (`_json[]%0A[][query]`) is read as Rack reads it and checked', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const form = `_json[]%0A[][query]=${encodeURIComponent(MUTATION)}`
  const refused = await postGraphql(g.url, form, { 'content-type': 'application/x-www-form-urlencoded', 'private-token': 'glpat-reader' })
  assert.equal(refused.status, 200)
  assert.ok(Array.isArray(refused.body), JSON.stringify(refused.body))
  assert.equal(refused.body[0].errors[0].extensions.permission, 'create_markdown_upload')
  assert.equal(g.upstream.length, 0)
})

test('a batch that Rails\' deep munge empties (`[null]`, `_json[]` without a value) is no batch: the single query GitLab runs instead is checked', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const query = `?query=${encodeURIComponent(MUTATION)}`
  const json = await postGraphql(g.url, [null], { 'private-token': 'glpat-reader' }, `/api/graphql${query}`)
  assert.equal(json.body.errors[0].extensions.permission, 'create_markdown_upload', JSON.stringify(json.body))
  const form = await postGraphql(g.url, '_json[]', { 'content-type': 'application/x-www-form-urlencoded', 'private-token': 'glpat-reader' }, `/api/graphql${query}`)
  assert.equal(form.body.errors[0].extensions.permission, 'create_markdown_upload', JSON.stringify(form.body))
  assert.equal(g.upstream.length, 0)
})
