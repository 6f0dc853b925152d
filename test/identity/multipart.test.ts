// The streaming multipart guard: a credential field after a large file part stops the stream
// before the closing delimiter whatever the chunking; clean bodies pass byte for byte.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { request } from 'undici'
import { createMultipartGuard, multipartCredentials, type MultipartGuardOptions } from '../../src/identity/multipart.ts'
import { IdentityError } from '../../src/identity/types.ts'
import { identityFor, rawRequest, startStageServer, stubResolver, type StageReport } from './harness.ts'
import { eventually } from '../helpers/eventually.ts'

const A = 'glcbt-64_AAAAaaaa1111aaaa'
const B = 'glcbt-64_BBBBbbbb2222bbbb'
const TRIGGER = 'glptt-tttttttttttttttttttt'
const BOUNDARY = '------------------------d74496d66958873e' // curl's style: leading dashes
const CLOSING = Buffer.from(`--${BOUNDARY}--`)
const MiB = 1 << 20

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** Deterministic pseudo-random bytes (xorshift32), so a failure reproduces. */
function noise (size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size)
  let x = seed | 0 || 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

function filePart (name: string, filename: string, content: Buffer, boundary = BOUNDARY): Buffer {
  return Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    content,
    Buffer.from('\r\n')
  ])
}

function field (name: string, value: string, boundary = BOUNDARY): Buffer {
  return Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
}

const closing = (boundary = BOUNDARY): Buffer => Buffer.from(`--${boundary}--\r\n`)

type Chunking = number | 'random'

function * chunksOf (body: Buffer, chunking: Chunking, seed = 7): Iterable<Buffer> {
  let x = seed
  for (let offset = 0; offset < body.length;) {
    let size: number
    if (chunking === 'random') {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5
      size = 1 + ((x >>> 0) % 200_000)
    } else {
      size = chunking
    }
    yield body.subarray(offset, offset + size)
    offset += size
  }
}

async function runGuard (body: Buffer, chunking: Chunking, options: Partial<MultipartGuardOptions> = {}): Promise<{ received: Buffer, error?: IdentityError }> {
  const received: Buffer[] = []
  const sink = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      received.push(chunk)
      callback()
    }
  })
  try {
    await pipeline(Readable.from(chunksOf(body, chunking)), createMultipartGuard({ boundary: BOUNDARY, ...options }), sink)
    return { received: Buffer.concat(received) }
  } catch (err) {
    assert.ok(err instanceof IdentityError, `unexpected error ${String(err)}`)
    return { received: Buffer.concat(received), error: err }
  }
}

function assertPrefix (received: Buffer, body: Buffer): void {
  assert.ok(received.length <= body.length && body.subarray(0, received.length).equals(received), 'forwarded bytes are the start of the body, unchanged')
}

const chunkings: Chunking[] = [64 * 1024, 4099, 997, 'random']

test('a token field after a large file part stops the stream before the closing delimiter', async (t) => {
  const file = noise(3 * MiB, 42)
  const body = Buffer.concat([field('package_name', 'app'), filePart('file', 'app-1.0.tgz', file), field('job_token', A), closing()])
  const tokenPartAt = body.indexOf(`name="job_token"`)
  for (const chunking of chunkings) {
    await t.test(`chunks of ${chunking}`, async () => {
      const { received, error } = await runGuard(body, chunking)
      assert.equal(error?.code, 'MULTIPART_CREDENTIAL_NOT_ALLOWED')
      assertPrefix(received, body)
      assert.equal(received.indexOf(CLOSING), -1, 'the closing delimiter never reached the consumer')
      // Streaming, not buffering: most of the file part went through before the token was seen
      // (what the guard had queued when it failed is dropped, which is the safe direction).
      assert.ok(received.length > tokenPartAt - 256 * 1024, `forwarded ${received.length} of the ${tokenPartAt} bytes before the token part`)
    })
  }
})

test('the delimiter after a token part is held, even when more parts follow', async () => {
  const body = Buffer.concat([filePart('file', 'a.bin', noise(512 * 1024, 3)), field('token', A), filePart('file2', 'b.bin', noise(256 * 1024, 4)), closing()])
  const after = body.indexOf(`--${BOUNDARY}`, body.indexOf(A))
  const { received, error } = await runGuard(body, 'random')
  assert.equal(error?.code, 'MULTIPART_CREDENTIAL_NOT_ALLOWED')
  assertPrefix(received, body)
  assert.ok(received.length <= after, 'nothing after the token part was forwarded')
})

test('a clean multipart body passes byte-identical', async (t) => {
  const body = Buffer.concat([
    field('package_name', 'app'),
    filePart('file', 'app-1.0.tgz', noise(3 * MiB, 9)),
    field('description', 'token: see job_token docs'),
    filePart('token_file', 'token.txt', Buffer.from(`${A}\n`)), // a file is not a parameter value
    closing()
  ])
  for (const chunking of [...chunkings, 1 * MiB]) {
    await t.test(`chunks of ${chunking}`, async () => {
      const { received, error } = await runGuard(body, chunking)
      assert.equal(error, undefined)
      assert.equal(received.length, body.length)
      assert.equal(sha256(received), sha256(body))
    })
  }
})

test('the request job token repeated in a field passes; anything else next to it fails', async () => {
  const withA = Buffer.concat([filePart('file', 'f', noise(200_000, 5)), field('job_token', A), closing()])
  const same = await runGuard(withA, 'random', { allowedToken: A })
  assert.equal(same.error, undefined)
  assert.equal(sha256(same.received), sha256(withA))

  const other = await runGuard(withA, 'random', { allowedToken: B })
  assert.equal(other.error?.code, 'CREDENTIAL_AMBIGUOUS')
  assert.equal(other.received.indexOf(CLOSING), -1)

  const trigger = Buffer.concat([field('token', TRIGGER), field('ref', 'main'), closing()])
  assert.equal((await runGuard(trigger, 5)).error, undefined, 'a trigger token alone is not a job token')
  assert.equal((await runGuard(trigger, 5, { allowedToken: A })).error?.code, 'CREDENTIAL_AMBIGUOUS', 'but next to a job token it is a second credential')
})

interface NameCase { readonly name: string, readonly body: string, readonly flagged: boolean }

const b = BOUNDARY
const nameCases: NameCase[] = [
  { name: 'unquoted name', body: `--${b}\r\nContent-Disposition: form-data; name=job_token\r\n\r\n${A}\r\n--${b}--\r\n`, flagged: true },
  { name: 'array name job_token[]', body: `--${b}\r\nContent-Disposition: form-data; name="job_token[]"\r\n\r\n${A}\r\n--${b}--\r\n`, flagged: true },
  { name: 'bracketed name [job_token]', body: `--${b}\r\nContent-Disposition: form-data; name="[job_token]"\r\n\r\n${A}\r\n--${b}--\r\n`, flagged: true },
  { name: 'upper-case NAME parameter and header', body: `--${b}\r\nCONTENT-DISPOSITION: form-data; NAME="job_token"\r\n\r\n${A}\r\n--${b}--\r\n`, flagged: true },
  { name: 'RFC 5987 name*', body: `--${b}\r\nContent-Disposition: form-data; name*=utf-8''job%5Ftoken\r\n\r\n${A}\r\n--${b}--\r\n`, flagged: true },
  { name: 'backslash escape in a quoted name', body: `--${b}\r\nContent-Disposition: form-data; name="job\\_token"\r\n\r\n${A}\r\n--${b}--\r\n`, flagged: true },
  { name: 'file part named job_token', body: `--${b}\r\nContent-Disposition: form-data; filename="t.txt"; name="job_token"\r\n\r\n${A}\r\n--${b}--\r\n`, flagged: true },
  { name: 'job token value in any ordinary field', body: `--${b}\r\nContent-Disposition: form-data; name="note"\r\n\r\n${A}\r\n--${b}--\r\n`, flagged: true },
  { name: 'second name parameter', body: `--${b}\r\nContent-Disposition: form-data; name="ref"; name="job_token"\r\n\r\n${A}\r\n--${b}--\r\n`, flagged: true },
  { name: 'delimiter without the CRLF before it (Rack 2 reads it)', body: `--${b}\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue--${b}\r\nContent-Disposition: form-data; name="job_token"\r\n\r\n${A}\r\n--${b}--\r\n`, flagged: true },
  { name: 'a part after a closing-looking delimiter', body: `--${b}\r\nContent-Disposition: form-data; name="a"\r\n\r\nx--${b}--\r\n--${b}\r\nContent-Disposition: form-data; name="job_token"\r\n\r\n${A}\r\n--${b}--\r\n`, flagged: true },
  { name: 'LF-only lines (Go reads them)', body: `--${b}\nContent-Disposition: form-data; name="job_token"\n\n${A}\n--${b}--\n`, flagged: true },
  { name: 'header block cut by a delimiter (Rack reads on past it)', body: `--${b}\r\nContent-Disposition: form-data; name="job_token"\r\n--${b}\r\nX: y\r\n\r\nsomething\r\n--${b}--\r\n`, flagged: true },
  { name: 'preamble before the first delimiter', body: `preamble text\r\n--${b}\r\nContent-Disposition: form-data; name="job_token"\r\n\r\n${A}\r\n--${b}--\r\n`, flagged: true },
  { name: 'empty job_token is absent', body: `--${b}\r\nContent-Disposition: form-data; name="job_token"\r\n\r\n\r\n--${b}--\r\n`, flagged: false },
  { name: 'filename=token.txt is not name=token', body: `--${b}\r\nContent-Disposition: form-data; name="file"; filename="token"\r\n\r\n${A}\r\n--${b}--\r\n`, flagged: false },
  { name: 'ordinary fields', body: `--${b}\r\nContent-Disposition: form-data; name="ref"\r\n\r\nmain\r\n--${b}\r\nContent-Disposition: form-data; name="variables[TOKEN]"\r\n\r\nvalue\r\n--${b}--\r\n`, flagged: false }
]

test('part names read as leniently as any parser would', async (t) => {
  for (const c of nameCases) {
    await t.test(c.name, async () => {
      const body = Buffer.from(c.body)
      // Byte by byte: every header and delimiter is split across chunks at every position.
      for (const chunking of [1, 2, 3, body.length] as const) {
        const { received, error } = await runGuard(body, chunking)
        if (c.flagged) {
          assert.equal(error?.code, 'MULTIPART_CREDENTIAL_NOT_ALLOWED', `chunks of ${chunking}`)
          // The last closing delimiter: an earlier closing-looking one may pass, since every
          // parser that takes it as the end ignores what follows.
          assert.ok(received.length <= body.lastIndexOf(`--${BOUNDARY}`), 'the final delimiter was held')
        } else {
          assert.equal(error, undefined, `chunks of ${chunking}`)
          assert.ok(received.equals(body))
        }
      }
      // The buffered reading finds the same.
      assert.equal(multipartCredentials(body, BOUNDARY).some(cr => cr.jobToken), c.flagged)
    })
  }
})

test('a part header block over the limit is refused', async () => {
  const body = Buffer.concat([Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="x"\r\nX-Pad: `), Buffer.alloc(20_000, 0x61), Buffer.from(`\r\n\r\nv\r\n--${BOUNDARY}--\r\n`)])
  const { received, error } = await runGuard(body, 4096, { maxHeaderBytes: 16 * 1024 })
  assert.equal(error?.code, 'MULTIPART_HEADER_TOO_LARGE')
  assert.equal(received.indexOf(CLOSING), -1)
})

test('the upstream request is aborted before its last byte', async (t) => {
  // An upstream that records what it received and whether the request completed.
  const seen: Array<{ bytes: Buffer, complete: boolean }> = []
  const upstream = createServer((req, res) => {
    const chunks: Buffer[] = []
    const record = { bytes: Buffer.alloc(0), complete: false }
    seen.push(record)
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      record.complete = true
      res.end('ok')
    })
    req.on('close', () => { record.bytes = Buffer.concat(chunks) })
  })
  await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
  t.after(() => { upstream.closeAllConnections(); upstream.close() })
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/api/v4/projects/42/packages/pypi`
  const send = async (body: Buffer): Promise<{ status?: number, error?: unknown }> => {
    const guard = createMultipartGuard({ boundary: BOUNDARY })
    Readable.from(chunksOf(body, 16 * 1024)).pipe(guard)
    try {
      const res = await request(url, { method: 'POST', body: guard, headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } })
      await res.body.dump()
      return { status: res.statusCode }
    } catch (error) {
      return { error }
    }
  }
  const waitClosed = async (i: number): Promise<void> => {
    await eventually(() => seen[i] !== undefined && seen[i]!.bytes.length > 0, { message: `upstream request ${i} received` })
  }

  const bad = Buffer.concat([filePart('content', 'app.whl', noise(2 * MiB, 11)), field('token', A), closing()])
  const refused = await send(bad)
  assert.ok(refused.error !== undefined, 'the client side of the upstream request failed')
  await waitClosed(0)
  assert.equal(seen[0]?.complete, false, 'upstream never saw the end of the request')
  assert.ok(seen[0]!.bytes.length > MiB, 'the upload streamed before the token was found')
  assert.equal(seen[0]!.bytes.indexOf(CLOSING), -1, 'upstream never saw the closing delimiter')

  const good = Buffer.concat([filePart('content', 'app.whl', noise(2 * MiB, 12)), field('name', 'app'), closing()])
  const passed = await send(good)
  assert.equal(passed.status, 200)
  await waitClosed(1)
  assert.equal(seen[1]?.complete, true)
  assert.equal(sha256(seen[1]!.bytes), sha256(good))
})

test('large multipart through the stage: guarded, and enforced with the header token', async (t) => {
  const resolver = stubResolver({ [A]: identityFor(1) })
  const server = await startStageServer({ resolver, body: { maxBytes: 64 * 1024 } })
  t.after(() => server.close())
  const post = (headers: string[], body: Buffer): Promise<{ status: number, body: string }> =>
    rawRequest(server.port, ['POST /api/v4/projects/42/packages/pypi HTTP/1.1', `Content-Type: multipart/form-data; boundary=${BOUNDARY}`, ...headers], body)

  const withToken = Buffer.concat([filePart('content', 'a.whl', noise(300_000, 1)), field('job_token', A), closing()])
  const anonymous = JSON.parse((await post([], withToken)).body) as StageReport
  assert.equal(anonymous.kind, 'none')
  assert.equal(anonymous.bodyError, 'MULTIPART_CREDENTIAL_NOT_ALLOWED')

  const withHeader = JSON.parse((await post([`JOB-TOKEN: ${A}`], withToken)).body) as StageReport
  assert.equal(withHeader.kind, 'job')
  assert.equal(withHeader.bodyError, undefined)
  assert.equal(withHeader.bodySha256, sha256(withToken))
})
