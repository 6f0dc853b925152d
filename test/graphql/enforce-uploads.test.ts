// Fine-grained personal access tokens and GraphQL bodies over 1 MiB: an upload (the GraphQL
// multipart request spec: operations, map, files) is decided from its first parts and guarded
// for the rest; any other large body cannot be decided for such a token and is refused.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { scrape, total } from '../helpers/metrics.ts'

const MiB = 1 << 20
const TOKENS: Record<string, FakeToken> = {
  'glpat-uploader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['create_markdown_upload', 'read_project'], project_id: 200 }] },
  'glpat-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] },
  'glpat-legacy': { userId: 7 }
}
const BOUNDARY = '----graphql-upload-5c1e'
const MULTIPART = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }
const UPLOAD = {
  query: 'mutation($file: Upload!, $p: ID!) { uploadCreate(input: { projectPath: $p, file: $file }) { upload { markdown } errors } }',
  variables: { file: null, p: 'acme/lib' }
}
const part = (name: string, value: string): string => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`

/** operations, map, one file of `size` bytes, then `after` (more parts), then the closing delimiter. */
function upload (operations: unknown, size: number, after = ''): Buffer {
  return Buffer.concat([
    Buffer.from(part('operations', JSON.stringify(operations)) + part('map', '{"0":["variables.file"]}') +
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`),
    randomBytes(size),
    Buffer.from(`\r\n${after}--${BOUNDARY}--\r\n`)
  ])
}
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

test('a 3 MiB upload: allowed from its operations part and forwarded byte for byte; refused without the permission, nothing forwarded', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const body = upload(UPLOAD, 3 * MiB)
  const allowed = await postGraphql(g.url, body, { ...MULTIPART, 'private-token': 'glpat-uploader' })
  assert.deepEqual(allowed.body, { data: { upstream: true } })
  assert.equal(g.upstream.length, 1)
  assert.equal(g.upstream[0]!.sha256, sha256(body))

  const refused = await postGraphql(g.url, upload(UPLOAD, 3 * MiB), { ...MULTIPART, 'private-token': 'glpat-reader' })
  assert.equal(refused.status, 200)
  assert.equal(refused.body.errors[0].extensions.permission, 'create_markdown_upload')
  assert.equal(g.upstream.length, 1, 'not forwarded')
  // A token in a part before the file, no header: found there, as GitLab finds it.
  const early = Buffer.concat([Buffer.from(part('private_token', 'glpat-reader')), upload(UPLOAD, 2 * MiB)])
  const fromPart = await postGraphql(g.url, early, MULTIPART)
  assert.equal(fromPart.body.errors[0].extensions.permission, 'create_markdown_upload')
  assert.equal(g.upstream.length, 1, 'not forwarded')
  // The gate still serves on.
  const after = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id } }' }, { 'private-token': 'glpat-reader' })
  assert.deepEqual(after.body, { data: { upstream: true } })
})

test('a later part GitLab would read as a GraphQL parameter or a credential cuts the upload before GitLab has it whole', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  // Rack keeps the last `operations`: one after the file would replace what was decided.
  const swapped = await postGraphql(g.url, upload(UPLOAD, 2 * MiB, part('operations', JSON.stringify({ query: '{ project(fullPath: "other/tools") { id } }' }))), { ...MULTIPART, 'private-token': 'glpat-uploader' })
  assert.equal(swapped.status, 400)
  assert.equal(swapped.body.code, 'GRAPHQL_LATE_PARAMETER')
  // A token the gate never saw, after the file: no header token at all.
  const lateToken = await postGraphql(g.url, upload(UPLOAD, 2 * MiB, part('private_token', 'glpat-reader')), MULTIPART)
  assert.equal(lateToken.status, 400)
  assert.equal(lateToken.body.code, 'GRAPHQL_LATE_PARAMETER')
  // Named as Rack names parts too: by Content-ID, and by a name after an empty LF-only line
  // (Rack's header block runs on to CRLF CRLF).
  const byContentId = await postGraphql(g.url, upload(UPLOAD, 2 * MiB, `--${BOUNDARY}\r\nContent-ID: query\r\n\r\n{ x }\r\n`), { ...MULTIPART, 'private-token': 'glpat-uploader' })
  assert.equal(byContentId.body.code, 'GRAPHQL_LATE_PARAMETER')
  const afterLf = await postGraphql(g.url, upload(UPLOAD, 2 * MiB, `--${BOUNDARY}\r\nContent-Disposition: form-data\n\n; name=query\r\n\r\n{ x }\r\n`), { ...MULTIPART, 'private-token': 'glpat-uploader' })
  assert.equal(afterLf.body.code, 'GRAPHQL_LATE_PARAMETER')
  assert.equal(g.upstream.length, 0, 'GitLab never received any whole')
  // A part of the decided bytes that parsers could name differently: refused before anything is forwarded.
  const doubtful = await postGraphql(g.url, Buffer.concat([Buffer.from(`--${BOUNDARY}\r\nContent-ID: query\r\n\r\n{ x }\r\n`), upload(UPLOAD, 2 * MiB)]), { ...MULTIPART, 'private-token': 'glpat-uploader' })
  assert.equal(doubtful.status, 400)
  assert.equal(doubtful.body.code, 'GRAPHQL_AMBIGUOUS_REQUEST')
  // The operations part itself over the limit: nothing to decide from.
  const huge = await postGraphql(g.url, upload({ ...UPLOAD, variables: { ...UPLOAD.variables, pad: 'x'.repeat(2 * MiB) } }, 10), { ...MULTIPART, 'private-token': 'glpat-uploader' })
  assert.equal(huge.status, 413)
  assert.equal(huge.body.code, 'GRAPHQL_FINE_GRAINED_BODY_TOO_LARGE')
})

test('a JSON body over 1 MiB: refused for a fine-grained token (413), streamed for a legacy one, refused with a token inside it', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, env: { GATE_MAX_INSPECTED_BODY_BYTES: String(4 * MiB) } })
  const big = { query: 'query($ids: [ID!]) { project(fullPath: "acme/lib") { id } }', variables: { ids: Array.from({ length: 60_000 }, (_, i) => `gid://gitlab/Project/${i}`) } }
  const fine = await postGraphql(g.url, big, { 'private-token': 'glpat-reader' })
  assert.equal(fine.status, 413)
  assert.equal(fine.body.code, 'GRAPHQL_FINE_GRAINED_BODY_TOO_LARGE')
  assert.match(fine.body.message, /1 MiB/)
  const legacy = await postGraphql(g.url, big, { 'private-token': 'glpat-legacy' })
  assert.deepEqual(legacy.body, { data: { upstream: true } })
  const inBody = await postGraphql(g.url, { ...big, access_token: 'glpat-reader' })
  assert.equal(inBody.status, 413)
  assert.equal(inBody.body.code, 'GRAPHQL_FINE_GRAINED_BODY_TOO_LARGE')
  assert.equal(g.upstream.length, 1)
  assert.ok(g.upstream[0]!.bytes > MiB)
  // Each refusal counted once, as a deny: it is no failure to ask GitLab.
  const { samples } = await scrape(g.healthUrl)
  assert.equal(total(samples, 'job_token_gate_graphql_decisions_total', { decision: 'deny', reason: 'GRAPHQL_FINE_GRAINED_BODY_TOO_LARGE' }), 1)
  assert.equal(total(samples, 'job_token_gate_graphql_decisions_total', { decision: 'error' }), 0)
})
