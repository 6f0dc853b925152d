// Raw HTTP requests for tests: the path is sent exactly as written (fetch and URL would resolve
// dot segments and re-encode), and the whole answer is collected; and a fake server's JSON answer.

import { createHash, randomBytes } from 'node:crypto'
import { request, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { Readable } from 'node:stream'

export interface RawResponse {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly text: string
  readonly json: () => any
}

export function send (base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<RawResponse> {
  const url = new URL(base)
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/**
 * A chunked POST written in pieces, so the gate streams the body rather than reading it whole.
 * The gate may answer and close before the whole body is written: that answer is kept.
 */
export function sendChunked (base: string, path: string, headers: Record<string, string>, pieces: ReadonlyArray<string | Buffer>): Promise<{ status: number, body: string }> {
  const url = new URL(base)
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: 'POST', path, headers: { ...headers, 'transfer-encoding': 'chunked' } }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err) })
    for (const p of pieces) req.write(p)
    req.end()
  })
}

/**
 * A POST of `bytes` written in 16 KiB pieces, framed as `headers` say (Content-Length or chunked);
 * the answer's status and, unless 200, its error `code`. The gate may answer and close before the
 * last piece: that answer is kept.
 */
export function postInPieces (base: string, path: string, headers: Record<string, string>, bytes: Buffer): Promise<{ status: number, code?: string }> {
  const url = new URL(base)
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: 'POST', path, headers }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, ...(res.statusCode === 200 ? {} : { code: (JSON.parse(text) as { code?: string }).code }) })
      })
      res.on('error', reject)
    })
    req.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err) })
    for (let at = 0; at < bytes.length; at += 16_384) req.write(bytes.subarray(at, at + 16_384))
    req.end()
  })
}

/** Deterministic bytes: `size` bytes in 64 KiB chunks of a repeated random block. */
export function generated (size: number): { stream: () => Readable, sha256: string } {
  const block = randomBytes(64 * 1024)
  // Sent without a Content-Type, a body that starts as a JSON object (`{`, `/`) is read as JSON.
  block[0] = 0x42
  const hash = createHash('sha256')
  for (let sent = 0; sent < size; sent += block.length) hash.update(block.subarray(0, Math.min(block.length, size - sent)))
  const sha256 = hash.digest('hex')
  return {
    sha256,
    stream: () => Readable.from((function * () {
      for (let sent = 0; sent < size; sent += block.length) yield block.subarray(0, Math.min(block.length, size - sent))
    })())
  }
}

export function upload (base: string, path: string, headers: Record<string, string>, body: Readable, size: number): Promise<{ status: number, text: string }> {
  const url = new URL(base)
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: 'PUT', path, headers: { ...headers, 'content-length': String(size) } }, res => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
    })
    req.on('error', reject)
    body.pipe(req)
  })
}

/** The answer to a raw request: headers lower-cased, a chunked body decoded. */
export interface RawAnswer {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

/**
 * Sends `lines` (request line and headers, without the blank line) and body exactly as written,
 * on a fresh connection (`Host` and `Connection: close` are added), and reads the answer to the
 * end: for requests Node's client would refuse or rewrite (odd headers, repeated Authorization,
 * hand-made chunked bodies). Each character of `lines` is one byte (latin1, as Node reads a head):
 * `\xA0` is the byte 0xA0.
 */
export async function rawRequest (port: number, lines: readonly string[], body: string | Buffer = ''): Promise<RawAnswer> {
  const payload = Buffer.isBuffer(body) ? body : Buffer.from(body)
  const head = [...lines, 'Host: 127.0.0.1', 'Connection: close']
  if (payload.length > 0 && !lines.some(l => /^(content-length|transfer-encoding):/i.test(l))) head.push(`Content-Length: ${payload.length}`)
  const socket = connect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  await new Promise<void>((resolve, reject) => {
    socket.on('connect', () => {
      socket.write(Buffer.from(head.join('\r\n') + '\r\n\r\n', 'latin1'))
      if (payload.length > 0) socket.write(payload)
    })
    socket.on('data', chunk => chunks.push(chunk))
    socket.on('end', resolve)
    socket.on('close', () => { resolve() })
    // A server that answers before reading the whole body may reset the connection: keep the answer.
    socket.on('error', err => { if (chunks.length > 0) resolve(); else reject(err) })
  })
  const text = Buffer.concat(chunks).toString('utf8')
  const split = text.indexOf('\r\n\r\n')
  const [statusLine, ...headerLines] = text.slice(0, split).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of headerLines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  let responseBody = text.slice(split + 4)
  if (headers['transfer-encoding'] === 'chunked') responseBody = dechunk(responseBody)
  return { status: Number(statusLine?.split(' ')[1]), headers, body: responseBody }
}

function dechunk (text: string): string {
  let out = ''
  let i = 0
  for (;;) {
    const eol = text.indexOf('\r\n', i)
    const size = Number.parseInt(text.slice(i, eol), 16)
    if (!(size > 0)) return out
    out += text.slice(eol + 2, eol + 2 + size)
    i = eol + 2 + size + 2
  }
}

/** A fake server's 200 JSON answer, with any headers (e.g. `x-next-page`). */
export function sendJson (res: ServerResponse, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}
