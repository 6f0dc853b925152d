// Finding: each part's header block is read every way a parser could read it (Rack 2 and 3, Go's
// media type parser and Workhorse's re-serialization, the block run on across delimiters), up to
// fifty times the CPU of the same bytes in a file. The part count is bounded (4,096) and so is
// each block (16 KiB), but not what the blocks hold together: 4,096 parts of 16 KiB blocks of
// `name="a"; ` over and over (57 MiB, no token needed) held the gate's CPU for 17 s where a file
// of that size takes a third of a second, and a client streaming them held it as long as it sent.
// A body whose parts hold more than 512 KiB of header bytes together is refused, 400
// MULTIPART_HEADERS_TOO_LARGE, buffered or streamed, the delimiter past them never forwarded.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_MULTIPART_HEAD_BYTES, MAX_MULTIPART_PARTS, scanMultipart } from '../../src/identity/multipart.ts'
import { IdentityError } from '../../src/identity/types.ts'
import { startTestGate } from '../helpers/gate.ts'
import { postInPieces } from '../helpers/http.ts'

const BOUNDARY = 'xYzZy'
const HEAD = 'Content-Disposition: form-data; ' + 'name="a"; '.repeat(1500).trimEnd() + '\r\n'
/** `parts` field parts of `head`, then a file part of `padding` bytes when asked, then the closing delimiter. */
const body = (parts: number, head: (i: number) => string, padding = 0): Buffer =>
  Buffer.from(Array.from({ length: parts }, (_, i) => `--${BOUNDARY}\r\n${head(i)}\r\nv\r\n`).join('') +
    (padding > 0 ? `--${BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="f"\r\n\r\n${'x'.repeat(padding)}\r\n` : '') + `--${BOUNDARY}--\r\n`)
const plain = (i: number): string => `Content-Disposition: form-data; name="field${i}"\r\n`
const stuffed = (): string => HEAD

const refused = (err: unknown): boolean => err instanceof IdentityError && err.code === 'MULTIPART_HEADERS_TOO_LARGE'

test('multipart: the parts\' header blocks are bounded together; the most parts of plain headers are read', () => {
  assert.equal(MAX_MULTIPART_HEAD_BYTES, 512 * 1024)
  // 4,096 parts of a plain header each: well under the bound.
  assert.equal(scanMultipart(body(MAX_MULTIPART_PARTS - 1, plain, 100_000), BOUNDARY).credentials.length, 0)
  const fits = Math.floor(MAX_MULTIPART_HEAD_BYTES / (HEAD.length + 4))
  assert.equal(scanMultipart(body(fits, stuffed), BOUNDARY).credentials.length, 0)
  assert.throws(() => scanMultipart(body(fits + 1, stuffed), BOUNDARY), refused)
  // Blocks with LF-only lines Rack reads on to the next delimiter count whole.
  const lf = (): string => 'Content-Disposition: form-data; name="a"\n' + 'X: a\n'.repeat(3000)
  assert.throws(() => scanMultipart(body(40, lf), BOUNDARY), refused)
  // File parts with LF-only header lines (Go's block ends) count Go's block, whatever their data holds.
  const lfFile = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="a"\n\n${'z'.repeat(30_000)}\r\n\r\n${'z'.repeat(10_000)}\r\n`
  assert.equal(scanMultipart(Buffer.from(lfFile.repeat(200) + `--${BOUNDARY}--\r\n`), BOUNDARY).credentials.length, 0)
})

test('through the gate, no token: a body of many large part headers is refused, buffered or streamed, and never ends upstream', async t => {
  const g = await startTestGate(t)
  const type = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }
  const uploads = '/api/v4/projects/200/uploads'
  const read = body(MAX_MULTIPART_PARTS - 1, plain, 200_000)
  assert.equal((await postInPieces(g.url, uploads, { ...type, 'content-length': String(read.length) }, read)).status, 200)
  for (const bytes of [body(200, stuffed), body(200, stuffed, 200_000)]) {
    for (const framing of [{ 'content-length': String(bytes.length) }, { 'transfer-encoding': 'chunked' }] as Array<Record<string, string>>) {
      const answer = await postInPieces(g.url, uploads, { ...type, ...framing }, bytes)
      assert.deepEqual(answer, { status: 400, code: 'MULTIPART_HEADERS_TOO_LARGE' }, `${bytes.length} bytes, ${Object.keys(framing)[0]!}`)
    }
  }
  // GitLab got the plain body whole; none of the refused ones ended.
  assert.deepEqual(g.seen.map(s => s.bytes), [read.length])
})
