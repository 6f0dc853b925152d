// Small readings of an incoming request shared by the listeners.

import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { tokenShaped } from '../text.ts'

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Whether the request declares a body (a length other than 0, or a transfer encoding). */
export function hasBody (req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/**
 * The path sent upstream: the canonical path that was decided, with the trailing `/` the client
 * sent (one, as Workhorse's cleaned path keeps one). Grape ignores a trailing slash, so the route
 * GitLab runs is the one decided; Workhorse, in front of Rails, picks its handler by the path as
 * sent, trailing slash included (workhorse/internal/upstream/routes.go): `PUT
 * .../packages/nuget/`, what `dotnet nuget push` sends, is its NuGet upload, `.../packages/nuget`
 * no upload at all, and Rails then refuses the push.
 */
export function upstreamPath (target: string, canonicalPath: string): string {
  const q = target.indexOf('?')
  const end = q === -1 ? target.length : q
  return end > 1 && target.charCodeAt(end - 1) === 0x2f && canonicalPath !== '/' ? canonicalPath + '/' : canonicalPath
}

/** This process's part of every request id it makes: 64 random bits, so replicas' ids differ. */
const ID_PREFIX = `${randomBytes(8).toString('hex')}-`
let idCount = 0

/**
 * A new request id: the process's random prefix and a count (`3f9c2a7b1e04d865-1k2`). Unique and
 * not secret (ids are answered and logged). Hot path: a random UUID per request cost about 1,600
 * instructions, most of them building its 36 characters from 16 random bytes (random ids from a
 * pool of random bytes measured no cheaper); this costs a tenth. Two ids a client sees tell it how
 * many requests this process saw in between, no more than GitLab's sequential job ids tell a job.
 */
export function newRequestId (): string {
  return ID_PREFIX + (++idCount).toString(36)
}

/**
 * `import-<uuid>` names every audit event of an operator's `import-allowlists` run. A trusted
 * proxy may pass a client's id on as its own (ingress-nginx does), and a pod range listed in
 * GATE_TRUSTED_PROXIES holds CI job pods too: an id of that form from a peer is never taken, or
 * any Maintainer's change read as part of an operator's import.
 */
const RESERVED_REQUEST_ID = /^import-/i

/**
 * A trusted peer's well-formed X-Request-Id, else a new one. An id that holds something
 * token-shaped (text.ts tokenShaped) is not taken either: the id is written into every log line
 * and answer of the request, and a proxy that passes the client's id on (ingress-nginx) passes
 * whatever the client wrote there, a token included.
 */
export function requestIdOf (req: IncomingMessage, peerTrusted: boolean): string {
  const incoming = req.headers['x-request-id']
  return peerTrusted && typeof incoming === 'string' && REQUEST_ID.test(incoming) && !RESERVED_REQUEST_ID.test(incoming) && !tokenShaped(incoming) ? incoming : newRequestId()
}

