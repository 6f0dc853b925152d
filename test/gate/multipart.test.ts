// A job token hidden after a large file part: the gate streams the upload and aborts the
// upstream request before its last byte, so GitLab never acts on it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { eventually } from '../helpers/eventually.ts'
import { recordingUpstream } from '../helpers/recording-upstream.ts'
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
  const upstream = await recordingUpstream(t)
  const g = await startTestGate(t, { GATE_UPSTREAM_URL: upstream.url })
  const boundary = 'gate-test-boundary-42'
  const file = randomBytes(2 * 1024 * 1024)
  const path = '/api/v4/projects/100/packages/pypi'
  const headers = { 'job-token': TOKENS.app, 'content-type': `multipart/form-data; boundary=${boundary}` }

  const hidden = multipart(boundary, [{ name: 'content', value: file, filename: 'pkg-1.0.tar.gz' }, { name: 'job_token', value: TOKENS.tools }])
  const refused = await send(g.url, 'POST', path, headers, hidden)
  assert.equal(refused.status, 401)
  assert.equal(refused.json().code, 'CREDENTIAL_AMBIGUOUS')
  // The upload was streamed, then cut: wait for the upstream to see its end, whatever it is.
  const [cut] = await eventually(() => upstream.requests.length === 1 && upstream.requests[0]!.closed && upstream.requests, { message: 'the upstream request to end' })
  assert.equal(cut!.complete, false, 'the upstream never received a complete request')
  assert.ok(cut!.bytes < hidden.length)

  const clean = multipart(boundary, [{ name: 'content', value: file, filename: 'pkg-1.0.tar.gz' }, { name: 'name', value: 'pkg' }])
  const passed = await send(g.url, 'POST', path, headers, clean)
  assert.equal(passed.status, 200)
  assert.equal(upstream.requests.length, 2)
  assert.equal(upstream.requests[1]!.complete, true)
  assert.equal(upstream.requests[1]!.bytes, clean.length, 'a clean upload arrives whole')
})
