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
import { spawnSync } from 'node:child_process'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { railsUnavailable } from '../helpers/rails-routes.ts'
import { requireTool } from '../helpers/require-tool.ts'

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
const SURROGATE_MAP = '{"\\ud800\\u0041": ["variables.p"]}'

// What GitLab's upload middleware looks up for each key of the `map` (GraphQLDataBuilder:
// `params[key]`, the keys as Ruby's JSON reads them), on a body of a `map` part and one text part
// of the given name (hex) holding OTHER; `raised` where Ruby's JSON refuses the `map`.
const LOOKUP_RB = `
require 'json'
require 'action_dispatch'
map, name = JSON.parse($stdin.read)
part = ->(n, v) { "--b\\r\\nContent-Disposition: form-data; name=\\"#{n}\\"\\r\\n\\r\\n#{v}\\r\\n".b }
body = part.('map', map) + part.([name].pack('H*'), '${OTHER}') + "--b--\\r\\n".b
env = Rack::MockRequest.env_for('/api/glql', method: 'POST', input: body, 'CONTENT_TYPE' => 'multipart/form-data; boundary=b')
params = ActionDispatch::Request.new(env).params
begin
  puts JSON.generate(JSON.parse(params['map']).keys.map { |k| params[k] })
rescue JSON::ParserError
  puts JSON.generate('raised')
end
`

test('Ruby\'s JSON reads a key with a lone surrogate as the name of another part, or refuses it', t => {
  if (!requireTool(t, railsUnavailable())) return
  const run = spawnSync('ruby', ['-W0', '-e', LOOKUP_RB], { input: JSON.stringify([SURROGATE_MAP, Buffer.from('\u{10041}').toString('hex')]), encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  const found = JSON.parse(run.stdout)
  // json 2.6 (Ruby 3.1's) finds the text; the newest versions raise.
  assert.ok(found === 'raised' || (Array.isArray(found) && found[0] === OTHER), run.stdout)
  // The gate's JSON.parse names no parameter there.
  assert.deepEqual(Object.keys(JSON.parse(SURROGATE_MAP)), ['\ud800A'])
})

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
    ['a token moved into private_token', part('operations', JSON.stringify({ query: '{ project(fullPath: "other/tools") { id } }' })) + part('map', '{"t": ["private_token"]}') + part('t', 'glpat-vuln')],
    // JSON.parse keeps a lone surrogate in the key, while Ruby's JSON (2.6) joins it with the
    // escape after it: U+10041, the parameter of the part so named (see the Ruby case below).
    ['a map key Ruby\'s JSON reads otherwise', part('operations', OPERATIONS) + part('map', SURROGATE_MAP) + part('\u{10041}', OTHER), '/api/glql']
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
  // A decided `map` with a key Ruby's JSON reads otherwise is refused as in a whole body.
  const surrogate = await postGraphql(g.url, body('{"0": ["variables.f"], "\\ud800\\u0041": ["variables.p"]}', part('\u{10041}', OTHER)), headers, '/api/glql')
  assert.equal(surrogate.status, 400, surrogate.text)
  assert.equal(surrogate.body.code, 'GRAPHQL_AMBIGUOUS_REQUEST')
  // A later file the map names goes through.
  const ok = await postGraphql(g.url, body('{"0": ["variables.f"], "1": ["variables.p"]}', part('1', 'more data', 'b.bin')), headers)
  assert.deepEqual(ok.body, { data: { upstream: true } }, ok.text)
  assert.equal(g.upstream.filter(u => u.bytes > 0).length, 1, 'only the file upload reached GitLab whole')
})
