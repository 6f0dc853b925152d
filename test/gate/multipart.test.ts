// A job token hidden after a large file part: the gate streams the upload and aborts the
// upstream request before its last byte, so GitLab never acts on it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

function multipart (boundary: string, fields: Array<{ name: string, value: Buffer | string, filename?: string }>): Buffer {
  const parts: Buffer[] = []
  for (const f of fields) {
    const disposition = `form-data; name="${f.name}"${f.filename !== undefined ? `; filename="${f.filename}"` : ''}`
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${f.filename !== undefined ? 'Content-Type: application/octet-stream\r\n' : ''}\r\n`), Buffer.from(f.value), Buffer.from('\r\n'))
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`))
  return Buffer.concat(parts)
}

test('a second job token after a large file part aborts the upload before GitLab sees it complete', async (t) => {
  const g = await startTestGate(t)
  const boundary = 'gate-test-boundary-42'
  const file = randomBytes(2 * 1024 * 1024)
  const path = '/api/v4/projects/100/packages/pypi'
  const headers = { 'job-token': TOKENS.app, 'content-type': `multipart/form-data; boundary=${boundary}` }

  const hidden = multipart(boundary, [{ name: 'content', value: file, filename: 'pkg-1.0.tar.gz' }, { name: 'job_token', value: TOKENS.tools }])
  const refused = await send(g.url, 'POST', path, headers, hidden)
  assert.equal(refused.status, 401)
  assert.equal(refused.json().code, 'CREDENTIAL_AMBIGUOUS')
  await new Promise(resolve => setTimeout(resolve, 100))
  assert.equal(g.seen.length, 0, 'the upstream never received a complete request')

  const clean = multipart(boundary, [{ name: 'content', value: file, filename: 'pkg-1.0.tar.gz' }, { name: 'name', value: 'pkg' }])
  const passed = await send(g.url, 'POST', path, headers, clean)
  assert.equal(passed.status, 200)
  assert.equal(g.seen.length, 1)
  assert.equal(g.seen[0]!.bytes, clean.length, 'a clean upload arrives whole')
})
