// Finding: GitLab's upload middleware writes into the operation, at each path a GraphQL upload's
// `map` lists, the parameter of that name, and a global ID argument reads a text parameter so
// written as its text (test/security/graphql-apollo-map.slow.ts). The gate refuses a `map` naming
// a parameter that is not an uploaded file, reading the parts as Rack does: a part with
// `filename*=iso-8859-1''a.txt` is a file to Rack. Workhorse names and files the parts of
// GraphQL uploads with Go's mime.ParseMediaType, which drops a `filename*` in a charset other than
// UTF-8 or US-ASCII, and hands Rails such a part as a text field. A fine-grained token limited to
// one project, its variables naming that project, had another project's global ID written into
// them by such a part, and a Developer's browser session deleted, past a Maintainer-only package
// rule, the package such a part named while the variables named one without a rule.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { gateWithPackageRule, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { goMultipart, goUnavailable } from '../helpers/go-multipart.ts'
import { requireTool } from '../helpers/require-tool.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-vuln': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['create_vulnerability'], project_id: 200 }] }
}
const B = 'map-charset-filename'
const MULTIPART = `multipart/form-data; boundary=${B}`
const part = (name: string, value: string, disposition = ''): string =>
  `--${B}\r\nContent-Disposition: form-data; name="${name}"${disposition}\r\n\r\n${value}\r\n`
const SPELLINGS = [`; filename*=iso-8859-1''a.txt`, `; filename*=ISO-8859-1'en'a.txt`, `; filename*=x''a.txt`]
const OPERATIONS = JSON.stringify({ query: 'mutation($p: ProjectID!, $f: Upload) { vulnerabilityCreate(input: {project: $p, name: "x", file: $f}) { errors } }', variables: { p: 'gid://gitlab/Project/200', f: null } })
const vulnerability = (disposition: string): string =>
  part('operations', OPERATIONS) + part('map', '{"evil": ["variables.p"]}') + part('evil', 'gid://gitlab/Project/300', disposition) + `--${B}--\r\n`

test('Workhorse hands Rails such a part as a text field', t => {
  if (!requireTool(t, goUnavailable())) return
  const readings = goMultipart(SPELLINGS.map(d => ({ boundary: B, body: Buffer.from(vulnerability(d)) })))
  SPELLINGS.forEach((d, i) => {
    const evil = readings[i]!.parts.find(p => p.name === 'evil')
    assert.equal(evil?.file, '', d)
    assert.match(readings[i]!.rewritten.toString('latin1'), /name=evil\r\n\r\ngid:\/\/gitlab\/Project\/300/, d)
  })
})

test('a `map` naming a part only Rack reads as a file is refused, for a fine-grained token', async t => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  for (const d of SPELLINGS) {
    const answer = await postGraphql(g.url, vulnerability(d), { 'private-token': 'glpat-vuln', 'content-type': MULTIPART })
    assert.equal(answer.status, 400, `${d}: ${answer.text}`)
    assert.equal(answer.body.code, 'GRAPHQL_AMBIGUOUS_REQUEST', d)
  }
  // Rack files ` [p]` in the hash ` `, which a key ` ` names; normalised, the name was `p`.
  for (const d of SPELLINGS) {
    const body = part('operations', OPERATIONS) + part('map', '{" ": ["variables.p"]}') + part(' [p]', 'gid://gitlab/Project/300', d) + `--${B}--\r\n`
    const answer = await postGraphql(g.url, body, { 'private-token': 'glpat-vuln', 'content-type': MULTIPART })
    assert.equal(answer.status, 400, `${d}: ${answer.text}`)
    assert.equal(answer.body.code, 'GRAPHQL_AMBIGUOUS_REQUEST', d)
  }
  assert.equal(g.upstream.length, 0)
  // A file part as clients write it goes through.
  const upload = await postGraphql(g.url, part('operations', OPERATIONS) + part('map', '{"0": ["variables.f"]}') + part('0', 'data', '; filename="a.txt"') + `--${B}--\r\n`, { 'private-token': 'glpat-vuln', 'content-type': MULTIPART })
  assert.deepEqual(upload.body, { data: { upstream: true } }, upload.text)
})

test('a large upload: a part the `map` names past the bytes decided from must be a file to Workhorse too', async t => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  for (const d of SPELLINGS) {
    const body = Buffer.concat([
      Buffer.from(part('operations', OPERATIONS) + part('map', '{"0": ["variables.f"], "evil": ["variables.p"]}') + `--${B}\r\nContent-Disposition: form-data; name="0"; filename="f.bin"\r\n\r\n`),
      Buffer.alloc(2 << 20, 0x61),
      Buffer.from(`\r\n${part('evil', 'gid://gitlab/Project/300', d)}--${B}--\r\n`)
    ])
    const answer = await postGraphql(g.url, body, { 'private-token': 'glpat-vuln', 'content-type': MULTIPART })
    assert.equal(answer.status, 400, `${d}: ${answer.text.slice(0, 300)}`)
    assert.equal(answer.body.code, 'GRAPHQL_LATE_PARAMETER', d)
  }
})

test('a `map` naming a part only Rack reads as a file is refused, for a package rule', async t => {
  const g = await gateWithPackageRule(t, 'npm', { delete: 'maintainer' })
  // acme/lib (200) keeps npm deletes to Maintainers; acme/platform/app (100) has no rule.
  g.gitlab.packages.push(
    { id: 1, name: 'left-pad', version: '1.0.0', packageType: 'npm', projectId: 200, createdAt: '2026-01-01T00:00:00Z' },
    { id: 4, name: 'app-lib', version: '1.0.0', packageType: 'npm', projectId: 100, createdAt: '2026-01-01T00:00:00Z' })
  const operations = JSON.stringify({ query: 'mutation($id: PackagesPackageID!) { destroyPackage(input: {id: $id}) { errors } }', variables: { id: 'gid://gitlab/Packages::Package/4' } })
  const before = g.seen.length
  for (const d of SPELLINGS) {
    const body = part('operations', operations) + part('map', '{"evil": ["variables.id"]}') + part('evil', 'gid://gitlab/Packages::Package/1', d) + `--${B}--\r\n`
    const res = await send(g.url, 'POST', '/api/graphql', { 'content-type': MULTIPART, cookie: `_gitlab_session=${USERS.developer}`, 'x-csrf-token': 'csrf' }, body)
    assert.equal(res.status, 400, `${d}: ${res.text}`)
    assert.equal(res.json().code, 'GRAPHQL_AMBIGUOUS_REQUEST', d)
  }
  assert.equal(g.seen.slice(before).filter(s => s.url.startsWith('/api/graphql')).length, 0, 'nothing reached GitLab')
})
