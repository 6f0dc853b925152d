// Regression: a large GraphQL upload (over 1 MiB) sent with a fine-grained token is decided from
// the parts complete in its first bytes; a later part the decided `map` names must be a file, as
// GitLab's upload middleware (apollo_upload_server) writes `params[key]` for each key of the map
// into the variables, text as well as files. Rack 2.2 keeps a part named ` evil` (a leading
// space) as the parameter ` evil`, which the map key ` evil` names. The gate compared the part's
// name, with Rack 3's normalisation (`evil`), against the map's keys as written (` evil`): no
// match, and the text part reached GitLab, which wrote another project's global ID into the
// variables the gate had checked.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-vuln': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['create_vulnerability'], project_id: 200 }] }
}
const B = 'late-map-key-1'
const MULTIPART = `multipart/form-data; boundary=${B}`
const headers = { 'private-token': 'glpat-vuln', 'content-type': MULTIPART }
const part = (name: string, value: string, filename?: string): string =>
  `--${B}\r\nContent-Disposition: form-data; name="${name}"${filename === undefined ? '' : `; filename="${filename}"`}\r\n\r\n${value}\r\n`
const OPERATIONS = JSON.stringify({ query: 'mutation($p: ProjectID!, $f: Upload) { vulnerabilityCreate(input: {project: $p, name: "x", file: $f}) { errors } }', variables: { p: 'gid://gitlab/Project/200', f: null } })
const OTHER = 'gid://gitlab/Project/300'

test('a large upload: a later text part named as a `map` key Rack reads it under (not as normalised) is refused', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const body = (map: string, late: string): Buffer => Buffer.concat([
    Buffer.from(part('operations', OPERATIONS) + part('map', map) + `--${B}\r\nContent-Disposition: form-data; name="0"; filename="f.bin"\r\n\r\n`),
    Buffer.alloc(2 << 20, 0x61),
    Buffer.from(`\r\n${late}--${B}--\r\n`)
  ])
  for (const [map, late] of [
    // Rack 2.2: params[" evil"] is the text of the part named " evil".
    ['{"0": ["variables.f"], " evil": ["variables.p"]}', part(' evil', OTHER)],
    ['{"0": ["variables.f"], "\\tevil": ["variables.p"]}', part('\tevil', OTHER)]
  ]) {
    const answer = await postGraphql(g.url, body(map!, late!), headers)
    assert.equal(answer.status, 400, `${map} ${late}: ${answer.text}`)
    assert.equal(answer.body.code, 'GRAPHQL_LATE_PARAMETER')
  }
  assert.equal(g.upstream.filter(u => u.bytes > 0).length, 0, 'no text part the map names reached GitLab whole')
})
