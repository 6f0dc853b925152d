// The API listener's request handler: the configuration API first, then the job-token stages of
// pipeline.ts, then forwarding to GitLab (src/proxy/forward.ts) or the deny.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import type { Admin } from '../admin/handler.ts'
import { errors, GateError, type ErrorCode } from '../errors.ts'
import { forward, upstreamHeaders, type Upstream } from '../proxy/forward.ts'
import { denyOf, newExchange, runStages, settle, type Engine, type Exchange } from './pipeline.ts'
import type { RecordDecision } from './record.ts'
import { ClientWaiter } from '../waiters.ts'
import { hasBody, upstreamPath } from './request.ts'
import { respond } from './respond.ts'

export interface ProxyOptions {
  readonly engine: () => Engine
  readonly admin: Pick<Admin, 'handle' | 'owns'>
  readonly upstream: Upstream
  readonly draining: () => boolean
  readonly record: RecordDecision
}

/** `peerTrusted`: the peer is a trusted proxy (X-Forwarded-* and X-Request-Id are kept). */
export type ProxyHandler = (req: IncomingMessage, res: ServerResponse, requestId: string, peerTrusted: boolean, expectContinue: boolean) => Promise<void>

const NOTHING_TO_CONTINUE = (): void => {}

function continueOnce (res: ServerResponse): () => void {
  let continued = false
  return () => {
    if (continued) return
    continued = true
    res.writeContinue()
  }
}

export function createProxyHandler (options: ProxyOptions): ProxyHandler {
  const { upstream, record, admin, draining } = options

  /** Answers a request whose body stream failed; returns the status sent. */
  function refuseBody (x: Exchange, res: ServerResponse, requestId: string, err: Error): number {
    // A body check that fails while streaming (a credential, a GraphQL body that turns out to be the
    // gate's) names its own code; any other body failure is unparseable.
    const code: ErrorCode = err instanceof GateError ? err.code : 'BODY_NOT_PARSEABLE'
    settle(x, 'deny', code, 'forward')
    const deny = denyOf(code)
    respond(res, requestId, deny, true)
    return deny.status
  }

  // Hot path: once per API request. One canonical form, one exchange, one await per step that
  // does I/O; everything else is synchronous.
  return async (req, res, requestId, peerTrusted, expectContinue) => {
    const started = performance.now()
    const method = req.method ?? 'GET'
    const target = req.url ?? '/'
    // Only a request that asked for `100 Continue` needs a function that sends it once.
    const sendContinue = expectContinue ? continueOnce(res) : NOTHING_TO_CONTINUE
    const canonical = options.engine().canonicalize(method, target)

    // Step 1, the configuration API (src/admin/, docs/admin.md): its paths and GraphQL's
    // allowlist mutations are answered by the gate itself. A GraphQL body it read to find out
    // is handed on as the body to inspect and forward.
    let body: Readable | null = hasBody(req) ? req : null
    if (draining()) {
      // Refused like any other request: answered, logged and counted (nothing was decided).
      const x = newExchange(method, target, req.headers, req.rawHeaders, null, canonical)
      settle(x, 'deny', 'GATE_SHUTTING_DOWN', 'forward')
      respond(res, requestId, 'GATE_SHUTTING_DOWN', true)
      record(x, requestId, started, errors.GATE_SHUTTING_DOWN.status)
      return
    }
    // owns() is synchronous: a path that is not the configuration API's skips handle()'s promise.
    let ciUserAccessToken = false
    if (admin.owns(canonical)) {
      const configuration = await admin.handle(req, res, canonical, requestId, sendContinue)
      if (configuration.kind === 'answered') return
      if (configuration.body !== null) body = configuration.body
      ciUserAccessToken = configuration.ciUserAccessToken === true
    }

    // Step 2, the job-token stages (pipeline.ts).
    const x = newExchange(method, target, req.headers, req.rawHeaders, body, canonical, sendContinue, true, req.socket, new ClientWaiter(res))
    x.ciUserAccessToken = ciUserAccessToken
    const stages = runStages(x, options.engine())
    const outcome = stages instanceof Promise ? await stages : stages
    const decidedAt = performance.now()
    if (outcome.kind === 'deny') {
      const deny = x.match?.route.packageFormat === 'npm' ? { ...outcome.deny, echoAsError: true } : outcome.deny
      // A body we did not read is not drained: the connection closes after the answer.
      respond(res, requestId, deny, x.body !== null && !req.complete)
      record(x, requestId, started, outcome.deny.status, decidedAt)
      return
    }

    // Step 3, forward. A client that went away while the stages awaited a lookup is not
    // forwarded for: its answer's 'close' has already gone by, so forward() could not see it.
    // Nor is one whose lookup was dropped for it (`gone`, recorded by the stage that waited).
    const forwardBody = x.forwardBody
    if (outcome.kind === 'gone' || res.destroyed) {
      // The body's stream (a guard over the request) is read by nobody now.
      if (forwardBody?.kind === 'stream') forwardBody.stream.destroy()
      if (outcome.kind !== 'gone') {
        x.reason = 'CLIENT_ABORTED'
        x.stage = 'forward'
      }
      record(x, requestId, started, 0, decidedAt)
      return
    }
    const sent: Buffer | Readable | null = forwardBody === null ? null : forwardBody.kind === 'buffered' ? forwardBody.bytes : forwardBody.stream
    // The multipart guard may have refused the body while the stages ran: nothing is sent then.
    const early = sent === null || Buffer.isBuffer(sent) ? null : sent.errored
    if (early !== null) {
      record(x, requestId, started, refuseBody(x, res, requestId, early), decidedAt)
      return
    }
    if (forwardBody?.kind === 'stream') sendContinue()
    const headers = upstreamHeaders(req.headers, { peer: req.socket.remoteAddress ?? '', trusted: peerTrusted, tls: false }, requestId, x.droppedHeaders, Buffer.isBuffer(sent) ? sent.length : null, req.rawHeaders)
    const authorized = x.canonical!
    const sentPath = upstreamPath(target, authorized.path)
    const path = authorized.query === '' ? sentPath : sentPath + '?' + authorized.query
    const result = await forward(upstream, req, res, { method, path, headers, body: sent })
    let status = 0
    switch (result.kind) {
      case 'done':
        status = result.status
        break
      case 'failed': {
        const deny = denyOf(result.code)
        settle(x, 'error', result.code, 'forward')
        x.upstreamError = result.detail
        status = deny.status
        respond(res, requestId, deny, !req.complete)
        break
      }
      case 'cut':
        // The client had the upstream's status line, then a cut connection: logged as the
        // upstream failure it was, with the status the client was sent.
        settle(x, 'error', result.code, 'forward')
        x.upstreamError = result.detail
        status = result.status
        break
      case 'body_failed':
        // The multipart guard found a credential it may not let through: the upstream request
        // was aborted before its last byte.
        status = refuseBody(x, res, requestId, result.error)
        break
      case 'aborted':
        // The verdict stands (the request was decided); only the reason says it did not finish.
        x.reason = 'CLIENT_ABORTED'
        x.stage = 'forward'
        break
    }
    record(x, requestId, started, status, decidedAt, result.kind === 'done' || result.kind === 'cut' ? result.upstreamHeadersMs : undefined)
  }
}
