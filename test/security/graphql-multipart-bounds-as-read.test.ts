// Finding: at /api/graphql the configuration API reads a body whole (up to 1 MiB, or the first
// MiB of a larger one) and reads every multipart part of it every way a parser could read it
// (doubtfulParts, Rack's fields) before the identity stage's multipart guard, which bounds the
// parts (4,096) and their header bytes together (512 KiB), ever sees it. A body of nearly 1 MiB of
// part headers, no token needed, cost the gate 0.2 to 0.9 s of CPU where the guard alone refuses
// it in a quarter of that, and the gate waited for its last byte before refusing it. The bounds
// now apply while the body is read, counted as the guard counts them: the refusal (400
// MULTIPART_HEADERS_TOO_LARGE, MULTIPART_TOO_MANY_PARTS) comes at the chunk that passes one,
// before the rest of the body is sent and before any part is read.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createMultipartCounter, MAX_MULTIPART_PARTS, scanMultipart } from '../../src/identity/multipart.ts'
import { IdentityError } from '../../src/identity/types.ts'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate } from '../helpers/gate.ts'
import { rawRequest, type RawAnswer } from '../helpers/http.ts'

const BOUNDARY = 'xYzZy'
const HEAD = 'Content-Disposition: form-data; ' + 'name="a"; '.repeat(1500).trimEnd() + '\r\n'
const part = (head: string): string => `--${BOUNDARY}\r\n${head}\r\nv\r\n`
/** `count` parts of `head`, then the delimiter that ends the last of them. */
const parts = (count: number, head: string): Buffer => Buffer.from(Array.from({ length: count }, () => part(head)).join('') + `--${BOUNDARY}\r\n`, 'latin1')

const code = (err: unknown): string | null => err instanceof IdentityError ? err.code : null

test('the counter refuses where the guard does, whatever the chunks', () => {
  const plain = (i: number): string => `Content-Disposition: form-data; name="field${i}"\r\n`
  const bodies: Buffer[] = [
    Buffer.from(Array.from({ length: 100 }, (_, i) => part(plain(i))).join('') + `--${BOUNDARY}--\r\n`),
    Buffer.concat([parts(36, HEAD), Buffer.from(`--\r\n`)]),
    Buffer.concat([parts(33, HEAD), Buffer.from(`--\r\n`)]),
    Buffer.concat([parts(40, 'Content-Disposition: form-data; name="a"\n' + 'X: a\n'.repeat(3000)), Buffer.from(`--\r\n`)]),
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="a"\n\n${'z'.repeat(30_000)}\r\n\r\n${'z'.repeat(10_000)}\r\n`.repeat(200) + `--${BOUNDARY}--\r\n`),
    Buffer.from(`--${BOUNDARY}\r\n\r\n\r\n`.repeat(MAX_MULTIPART_PARTS + 1) + `--${BOUNDARY}--\r\n`),
    Buffer.from(`--${BOUNDARY}\r\n\r\n\r\n`.repeat(MAX_MULTIPART_PARTS) + `--${BOUNDARY}--\r\n`),
    // A last part without a closing delimiter, counted at the end.
    Buffer.concat([parts(34, HEAD), Buffer.from(`${HEAD}\r\nv`)])
  ]
  const refusals: Array<string | null> = []
  for (const body of bodies) {
    let guard: string | null = null
    try { scanMultipart(body, BOUNDARY) } catch (err) { guard = code(err) }
    const expected = guard === 'MULTIPART_HEADERS_TOO_LARGE' || guard === 'MULTIPART_TOO_MANY_PARTS' ? guard : null
    for (const size of [1000, 16_384, body.length]) {
      const counter = createMultipartCounter(BOUNDARY)
      let counted: string | null = null
      try {
        for (let at = 0; at < body.length; at += size) counter.write(body.subarray(at, at + size))
        counter.end()
      } catch (err) { counted = code(err) }
      assert.equal(counted, expected, `${body.length} bytes in chunks of ${size}`)
    }
    refusals.push(expected)
  }
  // The bodies above reach both bounds, and stay within them.
  assert.deepEqual(refusals, [null, 'MULTIPART_HEADERS_TOO_LARGE', null, 'MULTIPART_HEADERS_TOO_LARGE', null, 'MULTIPART_TOO_MANY_PARTS', null, 'MULTIPART_HEADERS_TOO_LARGE'])
})

test('at /api/graphql, no token: a multipart body past the bounds is refused before the rest of it is sent', async t => {
  const g = await startTestGate(t)
  const port = Number(new URL(g.url).port)
  const sent: Array<[string, Buffer]> = [
    // 600 KiB of part headers, then the delimiter that ends the part passing 512 KiB.
    ['headers', parts(36, HEAD)],
    // 4,097 empty parts.
    ['parts', Buffer.from(`--${BOUNDARY}\r\n\r\n\r\n`.repeat(MAX_MULTIPART_PARTS + 1) + `--${BOUNDARY}\r\n`)]
  ]
  const expected = { headers: 'MULTIPART_HEADERS_TOO_LARGE', parts: 'MULTIPART_TOO_MANY_PARTS' }
  // Bodies declared under 1 MiB (read whole before) and over it (its first MiB read before).
  for (const declared of [1000 * 1024, 4 * 1024 * 1024]) {
    for (const [what, bytes] of sent) {
      assert.ok(bytes.length < declared / 1.5)
      let answer: RawAnswer | undefined
      // The rest of the body is never sent: before, the gate waited for it, and never answered.
      void rawRequest(port, ['POST /api/graphql HTTP/1.1', `Content-Type: multipart/form-data; boundary=${BOUNDARY}`, `Content-Length: ${declared}`], bytes).then(a => { answer = a })
      const got = await eventually(() => answer, { message: `the answer to ${bytes.length} of ${declared} bytes (${what})` })
      assert.equal(got.status, 400)
      assert.equal(JSON.parse(got.body).code, expected[what as keyof typeof expected], `${what}, ${declared} bytes declared`)
    }
  }
  assert.deepEqual(g.seen, [])
})
