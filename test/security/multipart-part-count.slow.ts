// Finding: the multipart guard reads each part every way a parser could (Rack 2 and 3, Go, the
// header block run on across delimiters), which costs some seventy times the CPU of the same
// bytes in a file part: 8 MiB of empty parts (`--b` CRLF CRLF CRLF, over and over), no token
// needed, held the gate's CPU for a second where an 8 MiB file took 40 ms, and a client streaming
// them held it as long as it sent. Rack reads no body of 4,096 parts or more (its
// multipart_total_part_limit raises), so GitLab acts on none of it: a body of more than 4,096
// parts is refused, 400 MULTIPART_TOO_MANY_PARTS, buffered or streamed, the delimiter past them
// never forwarded.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { MAX_MULTIPART_PARTS, scanMultipart } from '../../src/identity/multipart.ts'
import { IdentityError } from '../../src/identity/types.ts'
import { startTestGate } from '../helpers/gate.ts'
import { postInPieces } from '../helpers/http.ts'
import { rackUnavailable } from '../helpers/rack-oracle.ts'

const BOUNDARY = 'xYzZy'
/** A field part; `empty`: a part of nothing but its delimiter line and an empty header block. */
const part = (i: number, empty: boolean): string => empty ? `--${BOUNDARY}\r\n\r\n\r\n` : `--${BOUNDARY}\r\nContent-Disposition: form-data; name="a${i}"\r\n\r\nv\r\n`
/** `parts` parts, then a file part of `padding` bytes when asked, then the closing delimiter. */
const body = (parts: number, { empty = false, padding = 0 } = {}): Buffer =>
  Buffer.from(Array.from({ length: parts }, (_, i) => part(i, empty)).join('') + (padding > 0 ? `--${BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="f"\r\n\r\n${'x'.repeat(padding)}\r\n` : '') + `--${BOUNDARY}--\r\n`)

test('Rack reads no multipart body of 4,096 parts or more', { skip: process.env.CI === 'true' ? false : rackUnavailable() ?? false }, () => {
  const read = (parts: number): string => execFileSync('ruby', ['-rrack', '-e', `
    env = Rack::MockRequest.env_for('/', method: 'POST', 'CONTENT_TYPE' => 'multipart/form-data; boundary=${BOUNDARY}', input: STDIN.binmode.read)
    begin
      print Rack::Multipart.parse_multipart(env).size
    rescue => e
      print e.class.name
    end`], { input: body(parts), encoding: 'utf8' })
  assert.equal(read(4095), '4095')
  assert.equal(read(4096), 'Rack::Multipart::MultipartTotalPartLimitError')
})

test('a multipart body of more than 4,096 parts is refused; one of 4,096 is read', () => {
  assert.equal(MAX_MULTIPART_PARTS, 4096)
  for (const empty of [false, true]) {
    assert.equal(scanMultipart(body(4096, { empty }), BOUNDARY).credentials.length, 0)
    assert.throws(() => scanMultipart(body(4097, { empty }), BOUNDARY), (err: unknown) => err instanceof IdentityError && err.code === 'MULTIPART_TOO_MANY_PARTS')
  }
})

test('through the gate: buffered and streamed, the part past 4,096 is never forwarded', async t => {
  const g = await startTestGate(t)
  const type = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }
  const uploads = '/api/v4/projects/200/uploads'
  // 4,096 parts: empty ones, or 4,095 fields and a file.
  const read = [body(4096, { empty: true }), body(4095, { padding: 200_000 })]
  // Empty parts fit the 64 KiB read whole; named ones with a file part after them are streamed.
  assert.ok(read[0]!.length < 65_536)
  for (const bytes of read) assert.equal((await postInPieces(g.url, uploads, { ...type, 'content-length': String(bytes.length) }, bytes)).status, 200)
  for (const bytes of [body(4097, { empty: true }), body(4096, { padding: 200_000 }), body(20_000)]) {
    for (const framing of [{ 'content-length': String(bytes.length) }, { 'transfer-encoding': 'chunked' }] as Array<Record<string, string>>) {
      const answer = await postInPieces(g.url, uploads, { ...type, ...framing }, bytes)
      assert.deepEqual(answer, { status: 400, code: 'MULTIPART_TOO_MANY_PARTS' }, `${bytes.length} bytes, ${Object.keys(framing)[0]!}`)
    }
  }
  // GitLab got the bodies of 4,096 parts whole; none of the refused ones ended.
  assert.deepEqual(g.seen.map(s => s.bytes), read.map(b => b.length))
})
