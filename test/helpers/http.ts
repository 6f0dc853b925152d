// Raw HTTP requests for tests: the path is sent exactly as written (fetch and URL would resolve
// dot segments and re-encode), and the whole answer is collected.

import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
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

/** Deterministic bytes: `size` bytes in 64 KiB chunks of a repeated random block. */
export function generated (size: number): { stream: () => Readable, sha256: string } {
  const block = randomBytes(64 * 1024)
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
