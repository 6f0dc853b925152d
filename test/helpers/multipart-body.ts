// The pieces of a multipart upload under one boundary, for tests that build bodies part by part.

import assert from 'node:assert/strict'
import type { TestGate } from './gate.ts'
import { send, sendChunked } from './http.ts'

/** A part of header lines and a value; the closing delimiter; the request's Content-Type; a 512 KiB file part (past the inspection limit, so the body is streamed). */
export function multipartPieces (boundary: string): {
  readonly part: (headers: readonly string[], value: string | Buffer) => Buffer
  readonly end: Buffer
  readonly type: { readonly 'content-type': string }
  readonly bigFile: Buffer
} {
  const part = (headers: readonly string[], value: string | Buffer): Buffer =>
    Buffer.concat([Buffer.from(`--${boundary}\r\n${headers.join('\r\n')}\r\n\r\n`), Buffer.from(value), Buffer.from('\r\n')])
  return {
    part,
    end: Buffer.from(`--${boundary}--\r\n`),
    type: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    bigFile: part(['Content-Disposition: form-data; name="content"; filename="pkg-1.0.tar.gz"', 'Content-Type: application/octet-stream'], Buffer.alloc(512 * 1024, 0x61))
  }
}

/** An upload of `body` sent whole and then in chunks: both refused 400 with `code`, and nothing of it reaches the upstream. */
export async function refusedWholeAndStreamed (g: TestGate, path: string, headers: Record<string, string>, body: Buffer, code: string): Promise<void> {
  const buffered = await send(g.url, 'POST', path, headers, body)
  assert.equal(buffered.status, 400, `buffered: ${buffered.text}`)
  assert.equal(buffered.json().code, code)
  const streamed = await sendChunked(g.url, path, headers, [body])
  assert.equal(streamed.status, 400, `streamed: ${streamed.status} ${streamed.body}`)
  assert.equal(g.seen.length, 0, 'no upload reached the upstream')
}
