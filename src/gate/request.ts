// Small readings of an incoming request shared by the listeners.

import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Whether the request declares a body (a length other than 0, or a transfer encoding). */
export function hasBody (req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/** A trusted peer's well-formed X-Request-Id, else a new one. */
export function requestIdOf (req: IncomingMessage, peerTrusted: boolean): string {
  const incoming = req.headers['x-request-id']
  return peerTrusted && typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
}
