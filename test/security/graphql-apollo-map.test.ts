// Regression: GitLab's upload middleware (apollo_upload_server 2.1, GraphQLDataBuilder) writes
// into `operations`, at each path the `map` lists for a key, `params[key]`: the request's
// parameter of that name, whatever it is (a text field or a URL parameter as well as a file),
// wrapped in a delegator (Wrappers::UploadedFile). graphql-ruby's ID and String refuse the
// wrapper, but GitLab's global ID arguments read it through `to_str` (URI::GID.parse) as the text
// it holds. The gate checked the variables `operations` held: a fine-grained token limited to one
// project sent `variables: {p: "gid://gitlab/Project/200"}` with `map: {"evil": ["variables.p"]}`
// and a field `evil=gid://gitlab/Project/300`, and GitLab created the vulnerability in project 300.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-vuln': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['create_vulnerability'], project_id: 200 }] }
}
const B = 'apollo-map-1'
const MULTIPART = `multipart/form-data; boundary=${B}`
const headers = { 'private-token': 'glpat-vuln', 'content-type': MULTIPART }
const part = (name: string, value: string, filename?: string): string =>
  `--${B}\r\nContent-Disposition: form-data; name="${name}"${filename === undefined ? '' : `; filename="${filename}"`}\r\n\r\n${value}\r\n`
const OPERATIONS = JSON.stringify({ query: 'mutation($p: ProjectID!, $f: Upload) { vulnerabilityCreate(input: {project: $p, name: "x", file: $f}) { errors } }', variables: { p: 'gid://gitlab/Project/200', f: null } })
const OTHER = 'gid://gitlab/Project/300'

test('a `map` naming a parameter that is not an uploaded file is refused: GitLab would write its text into the variables', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const cases: Array<[string, string, string?]> = [
    ['a text field', part('operations', OPERATIONS) + part('map', '{"evil": ["variables.p"]}') + part('evil', OTHER)],
    ['a URL parameter', part('operations', OPERATIONS) + part('map', '{"evil": ["variables.p"]}'), `/api/graphql?evil=${encodeURIComponent(OTHER)}`],
    // Ruby's Array#each hands a pair's two elements to `|file_index, paths|`.
    ['a map of pairs', part('operations', OPERATIONS) + part('map', '[["evil", ["variables.p"]]]') + part('evil', OTHER)],
    // Ruby's JSON parser takes comments; the gate cannot read such a map.
    ['a map JSON.parse refuses', part('operations', OPERATIONS) + part('map', '/**/{"evil": ["variables.p"]}') + part('evil', OTHER)],
    // A credential written where GitLab's token finder reads one (`params[:private_token]`), from
    // a field the gate does not read as one: the request looked tokenless, and passed unchecked.
    ['a token moved into private_token', part('operations', JSON.stringify({ query: '{ project(fullPath: "other/tools") { id } }' })) + part('map', '{"t": ["private_token"]}') + part('t', 'glpat-vuln')]
  ]
  for (const [what, body, path] of cases) {
    const answer = await postGraphql(g.url, body + `--${B}--\r\n`, { 'content-type': MULTIPART, ...(what.startsWith('a token') ? {} : headers) }, path)
    assert.equal(answer.status, 400, `${what}: ${answer.text}`)
    assert.equal(answer.body.code, 'GRAPHQL_AMBIGUOUS_REQUEST', what)
  }
  assert.equal(g.upstream.length, 0)
  // An upload as clients send it, the map naming the file part, goes through.
  const upload = await postGraphql(g.url, part('operations', OPERATIONS) + part('map', '{"0": ["variables.f"]}') + part('0', 'data', 'a.txt') + `--${B}--\r\n`, headers)
  assert.deepEqual(upload.body, { data: { upstream: true } }, upload.text)
  assert.equal(g.upstream.length, 1)
})

test('a large upload: a part the `map` names, or a `map`, after the bytes decided from must be a file', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const body = (map: string, late: string): Buffer => Buffer.concat([
    Buffer.from(part('operations', OPERATIONS) + part('map', map) + `--${B}\r\nContent-Disposition: form-data; name="0"; filename="f.bin"\r\n\r\n`),
    Buffer.alloc(2 << 20, 0x61),
    Buffer.from(`\r\n${late}--${B}--\r\n`)
  ])
  for (const [map, late, path] of [
    ['{"0": ["variables.f"], "evil": ["variables.p"]}', part('evil', OTHER)],
    // Rack keeps the last `map`: a later one would name what the decided one did not.
    ['{"0": ["variables.f"]}', part('map', '{"0": ["variables.f"], "evil": ["variables.p"]}') + part('evil', OTHER)],
    // No token in the headers: the map's `private_token` is one the gate looks for.
    ['{"0": ["variables.f"], "t": ["private_token"]}', part('t', 'glpat-vuln')],
    // Rack 2.2 keeps a part named ` evil` as the parameter ` evil`, which the map key ` evil`
    // names: the later part's name was compared normalised (`evil`) with the keys as written.
    ['{"0": ["variables.f"], " evil": ["variables.p"]}', part(' evil', OTHER)],
    ['{"0": ["variables.f"], "\\tevil": ["variables.p"]}', part('\tevil', OTHER)],
    // Rack files a part under its name's bytes read as UTF-8, the key `é` as Ruby's JSON reads
    // it: the name was compared one character a byte. Where Rack reads the body itself (GraphQL
    // at `/api/glql`, which Workhorse does not rewrite), GitLab wrote the text into `variables.p`.
    ['{"0": ["variables.f"], "é": ["variables.p"]}', part('é', OTHER), '/api/glql'],
    // ` [p]` is `p` normalised, but Rack files it in the hash ` `, which the key ` ` names.
    ['{"0": ["variables.f"], " ": ["variables.p"]}', part(' [p]', OTHER)]
  ]) {
    const answer = await postGraphql(g.url, body(map!, late!), map!.includes('private_token') ? { 'content-type': MULTIPART } : headers, path)
    assert.equal(answer.status, 400, `${map} ${late}: ${answer.text}`)
    assert.equal(answer.body.code, 'GRAPHQL_LATE_PARAMETER')
  }
  // A later file the map names goes through.
  const ok = await postGraphql(g.url, body('{"0": ["variables.f"], "1": ["variables.p"]}', part('1', 'more data', 'b.bin')), headers)
  assert.deepEqual(ok.body, { data: { upstream: true } }, ok.text)
  assert.equal(g.upstream.filter(u => u.bytes > 0).length, 1, 'only the file upload reached GitLab whole')
})
