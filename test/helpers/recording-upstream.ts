// An API upstream on port 0 that records each request's body as it arrives: how many bytes, their
// sha256 once whole, whether the body arrived whole, and when the request is over. Tests use it
// to show that a refused streamed body never reached the upstream whole.

import type { TestContext } from 'node:test'
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface UpstreamRequest { bytes: number, sha256: string, complete: boolean, closed: boolean }

export async function recordingUpstream (t: TestContext): Promise<{ url: string, requests: UpstreamRequest[] }> {
  const requests: UpstreamRequest[] = []
  const server = createServer((req, res) => {
    const seen: UpstreamRequest = { bytes: 0, sha256: '', complete: false, closed: false }
    const hash = createHash('sha256')
    requests.push(seen)
    req.on('data', (chunk: Buffer) => { seen.bytes += chunk.length; hash.update(chunk) })
    req.on('end', () => {
      seen.complete = true
      seen.sha256 = hash.digest('hex')
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{}')
    })
    req.on('error', () => { /* the gate aborted the upload */ })
    req.on('close', () => { seen.closed = true })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests }
}
