// GraphQL bodies over the 1 MiB the configuration API reads: GitLab's own (uploads, large
// queries) stream through byte for byte; the gate's fields in them are refused, wherever they are.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, request, type ClientRequest, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { PassThrough, type Readable } from 'node:stream'
import fc from 'fast-check'
import { decideOverLimit, jsonUnescaped, namesGateFields } from '../../src/admin/graphql-body.ts'
import { MAX_ADMIN_BODY_BYTES } from '../../src/admin/handler.ts'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, type TestGate } from '../helpers/gate.ts'
import { ADMIN } from '../helpers/admin-gate.ts'

const MiB = 1 << 20

/** A request the upstream received: what arrived so far, and whether it ended or was cut. */
interface Received {
  readonly url: string
  readonly headers: IncomingMessage['headers']
  bytes: number
  sha256: string | null
  state: 'receiving' | 'complete' | 'aborted'
}

/** An upstream on port 0 that hashes bodies as they arrive and answers once they end. */
async function startUpstream (t: TestContext): Promise<{ url: string, received: Received[] }> {
  const received: Received[] = []
  const server = createServer((req, res) => {
    // The gate asks who a token is (fine-grained tokens are enforced at /api/graphql): a legacy one here.
    if (req.url === '/api/v4/personal_access_tokens/self') {
      req.resume()
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ id: 1, scopes: ['api'], granular: false }))
      return
    }
    const seen: Received = { url: req.url ?? '', headers: req.headers, bytes: 0, sha256: null, state: 'receiving' }
    received.push(seen)
    const hash = createHash('sha256')
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk)
      seen.bytes += chunk.length
    })
    req.on('end', () => {
      seen.state = 'complete'
      seen.sha256 = hash.digest('hex')
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ upstream: true, bytes: seen.bytes }))
    })
    req.on('close', () => { if (seen.state === 'receiving') seen.state = 'aborted' })
    req.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>(resolve => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received }
}

async function gateWithUpstream (t: TestContext, env: Record<string, string> = {}): Promise<{ g: TestGate, received: Received[] }> {
  const upstream = await startUpstream(t)
  const g = await startTestGate(t, { GATE_ADMIN_TOKEN: ADMIN, GATE_UPSTREAM_URL: upstream.url, ...env })
  return { g, received: upstream.received }
}

interface Answer { status: number, text: string }

/**
 * A POST with a Content-Length whose body is written by the test (`write`, `end`), with
 * backpressure; `answer` settles with the gate's answer, or null when the connection was cut
 * before one arrived.
 */
function open (base: string, path: string, headers: Record<string, string>, length: number): { req: ClientRequest, write: (chunk: Buffer) => Promise<void>, answer: Promise<Answer | null> } {
  const url = new URL(base)
  let settle: (a: Answer | null) => void = () => {}
  const answer = new Promise<Answer | null>(resolve => { settle = resolve })
  const req = request({ host: url.hostname, port: url.port, method: 'POST', path, headers: { ...headers, 'content-length': String(length) } }, res => {
    const chunks: Buffer[] = []
    res.on('data', (c: Buffer) => chunks.push(c))
    res.on('end', () => settle({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
    res.on('error', () => settle(null))
  })
  // A gate that answers before reading the whole body may cut the connection: the answer, if
  // any, is what counts.
  req.on('error', () => { setImmediate(() => settle(null)) })
  const write = async (chunk: Buffer): Promise<void> => {
    for (let at = 0; at < chunk.length; at += 64 * 1024) {
      if (req.destroyed) return
      if (req.write(chunk.subarray(at, at + 64 * 1024))) continue
      await new Promise<void>(resolve => {
        const done = (): void => {
          req.off('drain', done)
          req.off('close', done)
          resolve()
        }
        req.on('drain', done)
        req.on('close', done)
      })
    }
  }
  return { req, write, answer }
}

async function post (base: string, path: string, headers: Record<string, string>, body: Buffer): Promise<Answer | null> {
  const c = open(base, path, headers, body.length)
  await c.write(body)
  c.req.end()
  return await c.answer
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

const BOUNDARY = '----graphql-upload-7f3a'
const MULTIPART = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'private-token': 'glpat-designer' }

/** A GraphQL multipart request (operations, map, one file), as GitLab's design upload sends it. */
function upload (operations: unknown, file: Buffer): Buffer {
  const part = (name: string, value: string): string => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
  return Buffer.concat([
    Buffer.from(part('operations', JSON.stringify(operations)) + part('map', '{"0":["variables.files.0"]}') +
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="design.png"\r\nContent-Type: image/png\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`)
  ])
}

const DESIGN_UPLOAD = {
  query: 'mutation uploadDesign($files: [Upload!]!, $projectPath: ID!, $iid: ID!) { designManagementUpload(input: { projectPath: $projectPath, iid: $iid, files: $files }) { errors } }',
  variables: { files: [null], projectPath: 'acme/lib', iid: '1' }
}
const REMOVE = 'mutation { ciJobTokenScopeRemoveProject(input: { projectPath: "acme/lib", targetProjectPath: "other/tools" }) { errors } }'

test('graphql streaming: a 5 MiB multipart upload reaches GitLab byte for byte, and GitLab receives it while the client is still sending', async t => {
  const { g, received } = await gateWithUpstream(t)
  const body = upload(DESIGN_UPLOAD, randomBytes(5 * MiB))
  const c = open(g.url, '/api/graphql', MULTIPART, body.length)
  await c.write(body.subarray(0, 3 * MiB))
  // A gate that held the body would forward nothing before its last byte.
  await eventually(() => received.length === 1 && received[0]!.bytes > MAX_ADMIN_BODY_BYTES + MiB / 2, { message: 'the upstream receiving the upload before it was sent whole' })
  assert.equal(received[0]!.state, 'receiving')
  await c.write(body.subarray(3 * MiB))
  c.req.end()
  const answer = await c.answer
  assert.equal(answer?.status, 200, answer?.text)
  assert.equal(received[0]!.state, 'complete')
  assert.equal(received[0]!.bytes, body.length)
  assert.equal(received[0]!.sha256, sha256(body))
  assert.equal(received[0]!.headers['content-length'], String(body.length))
  assert.equal(received[0]!.url, '/api/graphql')
})

test('graphql streaming: a 2 MiB JSON query that is not the gate\'s reaches GitLab byte for byte', async t => {
  // The identity stage reads JSON bodies whole to look for a job token, up to its own limit.
  const { g, received } = await gateWithUpstream(t, { GATE_MAX_INSPECTED_BODY_BYTES: String(4 * MiB) })
  const ids = Array.from({ length: 90_000 }, (_, i) => `gid://gitlab/Project/${i}`)
  const body = Buffer.from(JSON.stringify({ query: 'query($ids: [ID!]) { projects(ids: $ids) { nodes { id fullPath } } }', variables: { ids } }) + '\n')
  assert.ok(body.length > 2 * MiB)
  const answer = await post(g.url, '/api/graphql', { 'content-type': 'application/json', 'private-token': 'glpat-reader' }, body)
  assert.equal(answer?.status, 200, answer?.text)
  assert.equal(received.length, 1)
  assert.equal(received[0]!.sha256, sha256(body))
  assert.equal(received[0]!.headers['content-length'], String(body.length))
})

test('graphql streaming: a 2 MiB application/graphql document streams through with the default limits', async t => {
  const { g, received } = await gateWithUpstream(t)
  const fields = Array.from({ length: 100_000 }, (_, i) => `f${i}: currentUser { id }`).join(' ')
  const body = Buffer.from(`query { ${fields} }`)
  assert.ok(body.length > 2 * MiB)
  const c = open(g.url, '/api/graphql', { 'content-type': 'application/graphql' }, body.length)
  await c.write(body.subarray(0, body.length - 1024))
  await eventually(() => received[0] !== undefined && received[0].bytes > MAX_ADMIN_BODY_BYTES, { message: 'the upstream receiving the document before its end' })
  await c.write(body.subarray(body.length - 1024))
  c.req.end()
  assert.equal((await c.answer)?.status, 200)
  assert.equal(received[0]!.sha256, sha256(body))
})

test('graphql streaming: the gate\'s fields in the first MiB of a larger body are refused (413), however they are escaped', async t => {
  const { g, received } = await gateWithUpstream(t)
  const pad = ' '.repeat(2 * MiB)
  const cases: Array<[string, string, string]> = [
    ['application/json', JSON.stringify({ query: REMOVE, pad }), 'plain'],
    ['application/json', JSON.stringify({ query: REMOVE, pad }).replace('ciJobTokenScope', 'ci\\u004aob\\u0054okenScope'), 'JSON-escaped'],
    ['application/json', JSON.stringify({ query: '{ project(fullPath: "acme/lib") { jobTokenPermissions { packageRegistry { format } } } }', pad }), 'the gate\'s own field'],
    ['application/x-www-form-urlencoded', `query=${encodeURIComponent(REMOVE).replace('ci', '%63%69')}&pad=${pad}`, 'percent-encoded'],
    ['application/x-www-form-urlencoded', `query=${encodeURIComponent(REMOVE.replace('ciJob', '\\u0063iJob'))}&pad=${pad}`, 'JSON escape, percent-encoded'],
    ['application/graphql', REMOVE + pad, 'a bare document']
  ]
  for (const [type, text, what] of cases) {
    const answer = await post(g.url, '/api/graphql', { 'content-type': type, 'private-token': ADMIN }, Buffer.from(text))
    assert.equal(answer?.status, 413, `${what}: ${answer?.text}`)
    assert.equal(JSON.parse(answer!.text).code, 'GRAPHQL_BODY_TOO_LARGE', what)
    assert.match(JSON.parse(answer!.text).message, /over 1048576 bytes and names job token allowlist fields/)
  }
  // In the URL, with a large harmless body: GitLab would run the URL's query.
  const url = await post(g.url, `/api/graphql?query=${encodeURIComponent(REMOVE)}`, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ query: '{ currentUser { id } }', pad })))
  assert.equal(url?.status, 413)
  assert.equal(received.length, 0)
})

test('graphql streaming: the gate\'s fields past the first MiB are found while the body streams; GitLab never gets the whole body', async t => {
  const { g, received } = await gateWithUpstream(t, { GATE_MAX_INSPECTED_BODY_BYTES: String(4 * MiB) })
  // JSON: the identity stage reads it whole before forwarding, so the gate answers with the code.
  const json = Buffer.from(JSON.stringify({ pad: ' '.repeat(2 * MiB), query: REMOVE }))
  const answer = await post(g.url, '/api/graphql', { 'content-type': 'application/json', 'private-token': ADMIN }, json)
  assert.equal(answer?.status, 413, answer?.text)
  assert.equal(JSON.parse(answer!.text).code, 'GRAPHQL_BODY_TOO_LARGE')
  assert.equal(received.length, 0)
})

test('graphql streaming: an upload whose later parts are the gate\'s is cut before GitLab gets its end', async t => {
  // A multipart upload whose later `operations` part (Rack keeps the last) is the gate's: the
  // upload was already streaming to GitLab, which is cut before the closing delimiter.
  const { g, received } = await gateWithUpstream(t)
  const later = Buffer.concat([
    upload(DESIGN_UPLOAD, randomBytes(2 * MiB)).subarray(0, -(BOUNDARY.length + 6)),
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${JSON.stringify({ query: REMOVE })}\r\n--${BOUNDARY}--\r\n`)
  ])
  const cut = await post(g.url, '/api/graphql', MULTIPART, later)
  // The client may see the answer, or only the connection closing if it was still sending.
  if (cut !== null) assert.equal(JSON.parse(cut.text).code, 'GRAPHQL_BODY_TOO_LARGE', cut.text)
  await eventually(() => received.length === 1 && received[0]!.state !== 'receiving', { message: 'the upstream request ending' })
  assert.equal(received[0]!.state, 'aborted')
  assert.ok(received[0]!.bytes < later.length)
})

test('graphql streaming: a multipart upload whose operations name the gate\'s mutations is refused (400), nothing forwarded', async t => {
  const { g, received } = await gateWithUpstream(t)
  const body = upload({ query: REMOVE.replace('{ errors }', '{ errors } designManagementUpload(input: { projectPath: "acme/lib", iid: 1, files: $files }) { errors }'), variables: { files: [null] } }, randomBytes(5 * MiB))
  const answer = await post(g.url, '/api/graphql', { ...MULTIPART, 'private-token': ADMIN }, body)
  assert.equal(answer?.status, 400, answer?.text)
  assert.equal(JSON.parse(answer!.text).code, 'GRAPHQL_MIXED_OPERATION')
  assert.match(JSON.parse(answer!.text).message, /take no uploads/)
  assert.equal(received.length, 0)
})

test('graphql streaming: a client that goes away mid-upload cancels the upstream request', async t => {
  const { g, received } = await gateWithUpstream(t)
  const body = upload(DESIGN_UPLOAD, randomBytes(5 * MiB))
  const c = open(g.url, '/api/graphql', MULTIPART, body.length)
  await c.write(body.subarray(0, 3 * MiB))
  await eventually(() => received[0] !== undefined && received[0].bytes > MAX_ADMIN_BODY_BYTES, { message: 'the upload reaching the upstream' })
  c.req.destroy()
  await eventually(() => received[0]!.state !== 'receiving', { message: 'the upstream request ending' })
  assert.equal(received[0]!.state, 'aborted')
  assert.ok(received[0]!.bytes < body.length)
  assert.equal(await c.answer, null)
})

test('graphql streaming: the search over a streamed body reads every escape GitLab could decode, across chunk boundaries', async () => {
  for (const [text, percent, names] of [
    ['mutation { ciJobTokenScopeAddProject }', false, true],
    ['{ updateJobTokenPermissions }', false, true],
    ['mutation { projectCiCdSettingsUpdate }', false, true],
    ['ci\\u004AobTokenScopeX', false, true],
    ['ci\\\\u004aobTokenScopeX', false, true],
    ['%63iJobTokenScopeX', true, true],
    ['%63iJobTokenScopeX', false, false],
    ['%5Cu0063iJobTokenScopeX', true, true],
    ['{ ciJobTokenScope { inboundAllowlist } }', false, false],
    ['{ currentUser { id } }', true, false]
  ] as Array<[string, boolean, boolean]>) assert.equal(namesGateFields(text, percent), names, text)

  const request = { method: 'POST', query: '', contentType: 'application/graphql' }
  const prefix = Buffer.alloc(MAX_ADMIN_BODY_BYTES + 1, 0x20)
  const run = async (chunks: string[]): Promise<{ bytes: number, error: Error | null }> => {
    const source = new PassThrough()
    const over = decideOverLimit(prefix, source, request, MAX_ADMIN_BODY_BYTES)
    assert.equal(over.kind, 'stream')
    const body = (over as { body: Readable }).body
    for (const chunk of chunks) source.write(chunk)
    source.end()
    let bytes = 0
    try {
      for await (const chunk of body) bytes += (chunk as Buffer).length
      return { bytes, error: null }
    } catch (err) {
      return { bytes, error: err as Error }
    }
  }
  const clean = await run(['{ currentUser ', '{ id } }'])
  assert.equal(clean.error, null)
  assert.equal(clean.bytes, prefix.length + '{ currentUser { id } }'.length, 'the bytes read first, then the rest')
  const split = await run(['mutation { ciJobTok', 'enScopeRemoveProject(input: {}) { errors } }'])
  assert.equal((split.error as { code?: string } | null)?.code, 'GRAPHQL_BODY_TOO_LARGE')
  assert.ok(split.bytes < prefix.length + 30, 'the chunk holding the rest of the name is not released')
  const escapedSplit = await run(['mutation { ci\\u00', '4aobTokenScopeRemoveProject }'])
  assert.equal((escapedSplit.error as { code?: string } | null)?.code, 'GRAPHQL_BODY_TOO_LARGE')
  // Chunks larger than the seam the search keeps, the name split or escaped inside one.
  const pad = 'x'.repeat(5000)
  for (const chunks of [[pad + 'mutation { ciJobTok', 'enScopeRemoveProject }' + pad], [pad, pad + ' \\u0063iJobTokenScopeRemoveProject ' + pad, pad]]) {
    const found = await run(chunks)
    assert.equal((found.error as { code?: string } | null)?.code, 'GRAPHQL_BODY_TOO_LARGE', chunks.join('').trim().slice(5000, 5040))
  }
})

test('jsonUnescaped decodes what `/\\\\+u([0-9a-fA-F]{4})/g` replaced, in linear time', () => {
  const reference = (text: string): string => text.replace(/\\+u([0-9a-fA-F]{4})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
  const atom = fc.constantFrom('\\', '\\\\', 'u', '0', '06a', '0041', 'g', 'x', '"')
  fc.assert(fc.property(fc.array(atom, { maxLength: 20 }).map(a => a.join('')), (text) => {
    assert.equal(jsonUnescaped(text), reference(text), JSON.stringify(text))
  }), { numRuns: 5_000 })
  // A MiB of backslashes before one escape: minutes with the expression.
  const started = performance.now()
  assert.equal(jsonUnescaped('\\'.repeat(1 << 20) + 'x\\u0041'), '\\'.repeat(1 << 20) + 'xA')
  assert.ok(performance.now() - started < 2_000, 'a hang detector: milliseconds now')
})
