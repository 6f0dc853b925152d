// npm sends its audits (`npm audit`, and the one `npm install` runs) as gzip JSON, which GitLab's
// Rails middleware inflates before Grape reads it (Gitlab::Middleware::CompressedJson, on npm's
// audit routes only, up to 200 KiB). The gate refused every such body (415), so no audit passed
// it. On those routes it now inflates the body to inspect it as GitLab will read it, and forwards
// the bytes it received; a compressed body anywhere else is still refused.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { identityFor, rawRequest, startStageServer, stubResolver, type StageReport } from './harness.ts'
import { createBodyScanner } from '../../src/identity/body-scan.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

const A = 'glcbt-64_AAAAaaaa1111aaaa'
const B = 'glcbt-64_BBBBbbbb2222bbbb'
const AUDITS = [
  '/api/v4/projects/42/packages/npm/-/npm/v1/security/advisories/bulk',
  '/api/v4/groups/acme/-/packages/npm/-/npm/v1/security/audits/quick',
  '/api/v4/packages/npm/-/npm/v1/security/advisories/bulk'
]
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const code = (body: string): string => (JSON.parse(body) as { code: string }).code

async function post (port: number, path: string, body: Buffer, headers: readonly string[] = ['Content-Type: application/json', 'Content-Encoding: gzip']): Promise<Awaited<ReturnType<typeof rawRequest>>> {
  return await rawRequest(port, [`POST ${path} HTTP/1.1`, ...headers], body)
}

test('npm audits: a gzip JSON body is inflated to be inspected, and forwarded as received', async (t) => {
  const server = await startStageServer({ resolver: stubResolver({ [A]: identityFor(1), [B]: identityFor(2) }) })
  t.after(() => server.close())
  const audit = gzipSync(JSON.stringify({ 'left-pad': ['1.3.0'] }))
  for (const path of AUDITS) {
    const res = await post(server.port, path, audit, ['Content-Type: application/json', 'Content-Encoding: gzip', `JOB-TOKEN: ${A}`])
    assert.equal(res.status, 200, `${path}: ${res.body}`)
    const report = JSON.parse(res.body) as StageReport
    assert.equal(report.kind, 'job')
    assert.equal(report.token, A)
    assert.equal(report.bodySha256, sha256(audit), 'the compressed bytes go on: GitLab inflates them')
  }
  // A job token inside the compressed body is GitLab's credential: found.
  const inside = gzipSync(JSON.stringify({ 'left-pad': ['1.3.0'], job_token: B }))
  const found = JSON.parse((await post(server.port, AUDITS[0]!, inside)).body) as StageReport
  assert.deepEqual([found.kind, found.token], ['job', B])
  // Beside another in the header: two credentials.
  const both = await post(server.port, AUDITS[0]!, inside, ['Content-Type: application/json', 'Content-Encoding: gzip', `JOB-TOKEN: ${A}`])
  assert.deepEqual([both.status, code(both.body)], [401, 'CREDENTIAL_AMBIGUOUS'])
})

test('npm audits: what cannot be inflated or read as GitLab would is refused', async (t) => {
  const server = await startStageServer({ resolver: stubResolver({ [A]: identityFor(1) }) })
  t.after(() => server.close())
  // Over the 200 KiB GitLab inflates (it answers 413 too).
  const large = gzipSync(JSON.stringify({ pad: 'x'.repeat(200 * 1024) }))
  assert.ok(large.length < 64 * 1024, 'small compressed')
  const tooLarge = await post(server.port, AUDITS[0]!, large)
  assert.deepEqual([tooLarge.status, code(tooLarge.body)], [413, 'BODY_TOO_LARGE_TO_INSPECT'])
  const corrupt = await post(server.port, AUDITS[0]!, Buffer.from('not gzip at all'))
  assert.deepEqual([corrupt.status, code(corrupt.body)], [415, 'BODY_ENCODING_NOT_INSPECTABLE'])
  const notJson = await post(server.port, AUDITS[0]!, gzipSync(`{"job_token": "${A}"`))
  assert.deepEqual([notJson.status, code(notJson.body)], [400, 'BODY_NOT_PARSEABLE'])
  // A second member is read too: a token in it is found, never passed over.
  const twoMembers = Buffer.concat([gzipSync('{"a": 1,'), gzipSync(` "job_token": "${A}"}`)])
  assert.equal((JSON.parse((await post(server.port, AUDITS[0]!, twoMembers)).body) as StageReport).token, A)
  // Other encodings, and gzip under a form type, are not what GitLab inflates.
  for (const headers of [['Content-Type: application/json', 'Content-Encoding: deflate'], ['Content-Type: application/x-www-form-urlencoded', 'Content-Encoding: gzip'], ['Content-Encoding: gzip']]) {
    const res = await post(server.port, AUDITS[0]!, gzipSync(`job_token=${A}`), headers)
    assert.deepEqual([res.status, code(res.body)], [415, 'BODY_ENCODING_NOT_INSPECTABLE'], headers.join(', '))
  }
})

test('a gzip JSON body anywhere else is still refused: GitLab reads it compressed', async (t) => {
  const server = await startStageServer({ resolver: stubResolver({ [A]: identityFor(1) }) })
  t.after(() => server.close())
  const res = await post(server.port, '/api/v4/projects/42/releases', gzipSync(JSON.stringify({ name: 'v1' })), ['Content-Type: application/json', 'Content-Encoding: gzip', `JOB-TOKEN: ${A}`])
  assert.deepEqual([res.status, code(res.body)], [415, 'BODY_ENCODING_NOT_INSPECTABLE'])
  assert.deepEqual(createBodyScanner().plan({ 'content-length': '10', 'content-type': 'application/json', 'content-encoding': 'gzip' }, 'POST', true), { kind: 'buffer', type: 'json', gzip: true })
  assert.deepEqual(createBodyScanner().plan({ 'content-length': '10', 'content-type': 'application/json', 'content-encoding': 'gzip' }, 'PUT', true), { kind: 'rejected', code: 'BODY_ENCODING_NOT_INSPECTABLE' })
})

test('through the gate: an allowed job\'s gzip audit reaches GitLab byte for byte, encoding kept', async (t) => {
  const g = await startTestGate(t)
  const audit = gzipSync(JSON.stringify({ 'left-pad': ['1.3.0'] }))
  const res = await fetch(`${g.url}/api/v4/projects/100/packages/npm/-/npm/v1/security/advisories/bulk`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'job-token': TOKENS.app }, body: audit })
  assert.equal(res.status, 200, await res.text())
  assert.equal(g.seen.length, 1)
  assert.equal(g.seen[0]!.sha256, sha256(audit))
  assert.equal(g.seen[0]!.headers['content-encoding'], 'gzip')
})
