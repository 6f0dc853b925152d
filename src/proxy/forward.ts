// Forwarding to the upstream with undici: one Pool per upstream, bodies streamed both ways
// with backpressure (never buffered whole), no retries (undici's Pool does not retry, and
// non-idempotent requests must never be replayed), and failures turned into GitLab-shaped
// 502/504 answers. The path sent is exactly the canonical path that was authorized, with the
// client's trailing slash (src/gate/request.ts, upstreamPath).

import type { IncomingMessage, ServerResponse, IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import { isIP } from 'node:net'
import { buildConnector, Pool, errors as undiciErrors, type Dispatcher } from 'undici'
import type { ErrorCode } from '../errors.ts'
import { teachUndiciGateHeaders } from './undici-names.ts'
import { cookieHeader } from '../identity/credentials.ts'

export interface UpstreamOptions {
  readonly url: string
  /**
   * Most connections to the upstream; 0 for no limit. A request past the limit waits in the
   * pool's queue for a connection another request frees, with no timeout of its own: a client
   * that stalls its upload (or stops reading its answer) keeps its connection until the client
   * timeout, so a limit lets that many stalled requests, anyone's, hold back every other one.
   */
  readonly connections: number
  readonly headersTimeoutMs: number
  readonly bodyTimeoutMs: number
  readonly connectTimeoutMs?: number
}

export interface Upstream {
  readonly pool: Pool
  /** Path prefix of the upstream URL ('' for none), prepended to every forwarded path. */
  readonly basePath: string
  /** The upstream's own host name, given with every request (below: why). */
  readonly servername: string
  close (): Promise<void>
  /** Whether the pool can take requests (for readiness). */
  usable (): boolean
}

export function createUpstream (options: UpstreamOptions): Upstream {
  // The names the gate sends on every request skip undici's checks of unknown names (undici-names.ts).
  teachUndiciGateHeaders()
  const url = new URL(options.url)
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  // The client's Host goes upstream as it came (upstreamHeaders), and undici would take a Host
  // header for the TLS server name of the request: the name sent in SNI and checked against the
  // upstream's certificate would be the client's choice, and a Host other than the last one would
  // close the connection to reconnect under the new name. So every request names the upstream's
  // own host (one name: connections are kept), and the connector uses the upstream URL's name
  // whatever a request says (none for an IP address, as undici does for one).
  const tlsName = isIP(hostname) === 0 ? hostname : undefined
  const connect = buildConnector({ timeout: options.connectTimeoutMs ?? 10_000 })
  const pool = new Pool(url.origin, {
    connections: options.connections === 0 ? null : options.connections,
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.bodyTimeoutMs,
    connect: (target, callback) => { connect({ ...target, servername: tlsName }, callback) },
    keepAliveTimeout: 30_000
  })
  let closed = false
  return {
    pool,
    basePath: url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, ''),
    servername: hostname,
    async close () {
      closed = true
      await pool.close()
    },
    usable: () => !closed && !pool.closed && !pool.destroyed
  }
}

const KEEP_ALIVE: ReadonlySet<string> = new Set(['keep-alive'])
const CLOSE: ReadonlySet<string> = new Set(['close'])

// RFC 9110 §7.6.1 hop-by-hop headers, plus the proxy's own concerns.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'host'])

const NONE: ReadonlySet<string> = new Set()

/**
 * The names `Connection` adds to the hop-by-hop headers, or null for none: `keep-alive` names
 * only a header HOP_BY_HOP drops already, so the usual value adds none (hot path: no lookups in
 * an empty set per header).
 */
function droppedBy (tokens: ReadonlySet<string>): ReadonlySet<string> | null {
  return tokens === NONE || tokens === KEEP_ALIVE ? null : tokens
}

/**
 * Hot path: runs three times per forwarded request (the client's header twice, the upstream's
 * once); no Connection header, or `keep-alive`/`close`, builds nothing, and the usual spelling
 * is compared before any lower-casing.
 */
function connectionTokens (value: string | string[] | undefined): ReadonlySet<string> {
  if (value === undefined) return NONE
  if (value === 'keep-alive') return KEEP_ALIVE
  if (typeof value === 'string') {
    const v = value.length <= 10 ? value.toLowerCase() : ''
    if (v === 'keep-alive') return KEEP_ALIVE
    if (v === 'close') return CLOSE
  }
  const tokens = new Set<string>()
  for (const part of ([] as string[]).concat(value ?? [])) {
    for (const token of part.split(',')) {
      const t = token.trim().toLowerCase()
      if (t !== '') tokens.add(t)
    }
  }
  return tokens
}

/**
 * Headers the gate's decision reads besides the credentials: how the body is framed, typed and
 * encoded (which decides whether and how it is inspected), and the method override Rack applies.
 */
const BODY_AND_METHOD_HEADERS = ['content-type', 'content-length', 'transfer-encoding', 'content-encoding', 'x-http-method-override']

/**
 * The first header named by `Connection` that the decision depended on, or null. Such a header
 * would be dropped on the way upstream (hop-by-hop), so GitLab would read a different request
 * than the one decided on: a POST whose Content-Type was dropped is parsed by Rack as a form,
 * with any `job_token=` in it. Names are compared as Rack reads them ('_' as '-').
 */
export function connectionDropsDecisionHeader (connection: string | string[] | undefined, decisionHeaders: ReadonlySet<string>): string | null {
  if (connection === undefined) return null
  for (const token of connectionTokens(connection)) {
    const name = token.indexOf('_') === -1 ? token : token.replaceAll('_', '-')
    if (decisionHeaders.has(name) || BODY_AND_METHOD_HEADERS.includes(name)) return token
  }
  return null
}

export interface ForwardedFor {
  /** The direct peer's address. */
  readonly peer: string
  /** Whether the peer is a configured trusted proxy, whose X-Forwarded-* are kept. */
  readonly trusted: boolean
  readonly tls: boolean
}

/**
 * The headers sent upstream, as a flat list of names and values (undici takes it as it is: no
 * object to build and read back by key): end-to-end headers only, X-Forwarded-* set, a
 * `Forwarded` kept from a trusted proxy only, no `Client-IP`, the request id added. `removed`:
 * lower-case names the decision took out (a stripped job token,
 * pipeline.ts). `bodyLength`: the length of an inspected body sent in place of the stream, which
 * replaces any Content-Length that came. `rawHeaders`: the request's header lines, from which the
 * Cookie header is sent as GitLab reads it and the users' package rules checked it (cookieHeader:
 * repeated lines joined with ', ', as Puma joins them), not as Node's headers object joins them.
 */
export function upstreamHeaders (incoming: IncomingHttpHeaders, from: ForwardedFor, requestId: string, removed: ReadonlySet<string> = NONE, bodyLength: number | null = null, rawHeaders?: readonly string[]): string[] {
  const drop = droppedBy(connectionTokens(incoming.connection))
  const taken = removed.size === 0 ? null : removed
  const out: string[] = []
  // Hot path (every forwarded request): a key loop, no entries array.
  for (const name in incoming) {
    const value = incoming[name]
    if (value === undefined) continue
    // Puma reads '_' in a header name as '-' (`X_Forwarded_Port` is X-Forwarded-Port to Rails,
    // unless a '-' spelling came too): a name is judged by that reading, and an '_' spelling of a
    // header that frames or types the body is not sent (only the real one may say it).
    const key = name.indexOf('_') === -1 ? name : name.replaceAll('_', '-')
    if (HOP_BY_HOP.has(key) || (drop !== null && (drop.has(name) || drop.has(key))) || (taken !== null && taken.has(name)) || key.startsWith('x-forwarded-') || key === 'x-request-id') continue
    if (key !== name && (key === 'content-length' || key === 'content-type' || key === 'content-encoding')) continue
    // RFC 7239's Forwarded says the same as X-Forwarded-* (Rack 3 reads it first, for the
    // client's host, scheme and address): believed, like them, only from a trusted proxy.
    if (key === 'forwarded' && !from.trusted) continue
    // Client-IP is ActionDispatch::RemoteIp's other source of the client's address, the one
    // GitLab's IP restrictions read (action_dispatch.remote_ip). No proxy in front sets it (nginx,
    // ingress-nginx, Traefik and Envoy pass the client's on as it came): never the gate's to pass.
    if (key === 'client-ip') continue
    if (bodyLength !== null && name === 'content-length') continue
    // Node joins repeated Cookie lines with '; ', where Rack finds the cookies of every line;
    // Puma joins them with ', ', where Rack reads later lines as part of the first cookie's value.
    // A session sent as a second line was taken for no one by the users' package rules (asked of
    // GitLab as Puma joins the lines) and signed in by GitLab from Node's join.
    if (name === 'cookie' && rawHeaders !== undefined) {
      const cookie = cookieHeader({ headers: incoming, rawHeaders })
      if (cookie !== undefined) out.push(name, cookie)
      continue
    }
    if (typeof value === 'string') out.push(name, value)
    else for (const v of value) out.push(name, v) // one line each, as undici writes an array value
  }
  if (bodyLength !== null) out.push('content-length', String(bodyLength))
  const prior = from.trusted ? incoming['x-forwarded-for'] : undefined
  const peer = ipv4Form(from.peer)
  out.push('x-forwarded-for', prior === undefined ? peer : `${([] as string[]).concat(prior).join(', ')}, ${peer}`)
  const proto = from.trusted ? firstValue(incoming['x-forwarded-proto']) : undefined
  out.push('x-forwarded-proto', proto ?? (from.tls ? 'https' : 'http'))
  const host = (from.trusted ? firstValue(incoming['x-forwarded-host']) : undefined) ?? incoming.host
  if (host !== undefined) {
    // GitLab builds absolute URLs from its external_url, not Host; keep the client's Host anyway,
    // as Workhorse does, so logs and redirects upstream see the name the client used.
    out.push('x-forwarded-host', host, 'host', incoming.host ?? host)
  }
  out.push('x-request-id', requestId)
  return out
}

/**
 * The query without every parameter that holds `secret`, read as Rack reads it (split on `&` and
 * `;`, decoded once, any name: `job_token`, `job_token[]`, `job_token%5B%5D`, `%74oken`...).
 * The pieces kept are sent as they came, joined with `&` (Rack reads `;` and `&` alike).
 */
export function queryWithout (query: string, secret: string, decode: (s: string) => string): string {
  if (query === '') return query
  return query.split(/[&;]/).filter(piece => piece !== '' && !piece.includes(secret) && !decode(piece).includes(secret)).join('&')
}

/**
 * An IPv4 peer's address in its IPv4 form. A listener on an IPv6 address is told an IPv4 peer's
 * as IPv4-mapped (`::ffff:10.244.1.7`), which no IPv4 range holds for GitLab (Ruby's IPAddr): its
 * trusted proxies would be clients to it, and a client's address outside a group's allowed ranges.
 */
function ipv4Form (address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}

function firstValue (value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value
  return v === undefined || v === '' ? undefined : v
}

export type ForwardOutcome =
  | { readonly kind: 'done', readonly status: number, readonly upstreamHeadersMs: number }
  /** The upstream failed before the response started: the caller answers with this code. */
  | { readonly kind: 'failed', readonly code: ErrorCode, readonly detail: string }
  /** The upstream failed after its status line was passed on: the client's answer was cut. */
  | { readonly kind: 'cut', readonly status: number, readonly code: ErrorCode, readonly detail: string, readonly upstreamHeadersMs: number }
  /** The client went away; the upstream request was cancelled. */
  | { readonly kind: 'aborted' }
  /** The request body stream failed (e.g. a credential found in a multipart body): nothing was answered yet. */
  | { readonly kind: 'body_failed', readonly error: Error }

export interface ForwardRequest {
  readonly method: string
  /** Canonical path plus `?query`, as authorized. */
  readonly path: string
  /** Names and values in turn (upstreamHeaders). */
  readonly headers: string[]
  /** null: no body; a Buffer: an inspected body; a stream: piped as it arrives. */
  readonly body: Buffer | Readable | null
}

function failureCode (err: unknown): { code: ErrorCode, detail: string } {
  const e = err as { code?: string, message?: string }
  const detail = `${e.code ?? 'error'}: ${e.message ?? String(err)}`
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
    return { code: 'UPSTREAM_TIMEOUT', detail }
  }
  return { code: 'UPSTREAM_UNAVAILABLE', detail }
}

/**
 * Sends the request upstream and streams the answer to `res`. Resolves when the exchange is
 * over; never throws. A client disconnect (req or res closing early) aborts the upstream call.
 */
export function forward (upstream: Upstream, req: IncomingMessage, res: ServerResponse, request: ForwardRequest): Promise<ForwardOutcome> {
  return new Promise(resolve => {
    const handler = new ForwardHandler(req, res, request.body, resolve)
    // undici's Request reads `servername` from these options; its DispatchOptions type lacks it.
    const options: Dispatcher.DispatchOptions & { servername: string } = {
      method: request.method as 'GET',
      path: upstream.basePath + request.path,
      headers: request.headers,
      body: request.body,
      servername: upstream.servername
    }
    upstream.pool.dispatch(options, handler)
  })
}

/** Removes every `name` (lower-case) from a flat list of names and values. */
function dropHeader (list: Array<string | string[]>, name: string): void {
  for (let i = list.length - 2; i >= 0; i -= 2) if (list[i] === name) list.splice(i, 2)
}

const clientGone = (): Error => new undiciErrors.RequestAbortedError('the client went away')

// Hot path: one per forwarded request. undici's dispatch with this handler instead of request()
// plus stream/promises pipeline(), which cost an AbortController per request, a second one inside
// pipeline() aborted on every finished request (a DOMException with a stack trace each time) and
// end-of-stream listeners on both streams: 110-145 µs of CPU per request in `npm run bench:e2e`
// (bench/README.md). What they gave is kept here by hand:
// - client abort: `res` closing before it finished aborts the upstream request through undici's
//   controller (before the request has a socket, as soon as it gets one);
// - backpressure both ways: undici reads a streamed request body as the upstream takes it; a
//   response chunk `res` cannot take pauses the upstream read until 'drain';
// - timeouts: the Pool's headersTimeout and bodyTimeout fail the request into onResponseError.
class ForwardHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null
  private status = 0
  private upstreamHeadersMs = 0
  private aborted = false
  private settled = false
  private readonly started = performance.now()

  constructor (
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly body: Buffer | Readable | null,
    private readonly resolve: (outcome: ForwardOutcome) => void
  ) {
    res.once('close', this.onClose)
    // Closed already (the client left before forwarding began): its 'close' has gone by.
    if (res.destroyed) this.aborted = true
  }

  private readonly onClose = (): void => {
    if (this.res.writableFinished || this.settled) return
    this.aborted = true
    this.controller?.abort(clientGone())
  }

  /** Made at the first chunk `res` cannot take: most answers never wait. */
  private onDrain: (() => void) | null = null

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.aborted) controller.abort(clientGone())
  }

  onResponseStart (_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // 1xx informational answers are not passed on (as undici's request() does not).
    if (statusCode < 200 || this.aborted) return
    this.upstreamHeadersMs = performance.now() - this.started
    // A flat list of names and values: cheaper to build than an object, and writeHead takes it.
    const out: Array<string | string[]> = []
    const drop = droppedBy(connectionTokens(headers.connection))
    for (const name in headers) {
      const value = headers[name]
      if (value === undefined || HOP_BY_HOP.has(name) || (drop !== null && drop.has(name))) continue
      out.push(name, value)
    }
    // A 204 carries no Content-Length (RFC 9110, 8.6); a 304's, which may say what a 200 would, stays.
    if (statusCode === 204 && headers['content-length'] !== undefined) dropHeader(out, 'content-length')
    // GitLab answered before the client's body was all read (Workhorse refusing an upload at its
    // pre-authorization, a size limit): undici stops reading the body, and nobody reads the rest.
    // The answer closes the connection, as the gate's own answers to unread bodies do
    // (respond.ts); left open, it said keep-alive and held the client, whose unread body blocked
    // it, until the keep-alive timeout.
    if (!this.req.complete) out.push('connection', 'close')
    this.status = statusCode
    this.res.writeHead(statusCode, out)
    // A 204 or 304 has no body whatever its headers say (RFC 9112, 6.3), but undici takes a
    // 304's Content-Length (which RFC 9110 allows: the length a 200 would have had) for a body
    // that never came and fails the request: the answer is whole here, so it ends here.
    if (statusCode === 304 || statusCode === 204) this.onResponseEnd()
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    // A destroyed answer never drains: waiting for it would hold the upstream connection forever.
    if (this.res.destroyed) {
      this.aborted = true
      controller.abort(clientGone())
      return
    }
    if (!this.res.write(chunk)) {
      controller.pause()
      this.onDrain ??= () => { this.controller?.resume() }
      this.res.once('drain', this.onDrain)
    }
  }

  onResponseEnd (): void {
    this.res.end()
    this.settle({ kind: 'done', status: this.status, upstreamHeadersMs: this.upstreamHeadersMs })
  }

  onResponseError (_controller: Dispatcher.DispatchController, err: Error): void {
    // Ended already (a 304 whose Content-Length undici then takes for a missing body).
    if (this.settled) return
    if (this.status !== 0) {
      // Mid-body failure: the status line is gone, so the only honest signal is a cut connection.
      if (!this.res.destroyed) this.res.destroy()
      this.settle(this.aborted ? { kind: 'aborted' } : { kind: 'cut', status: this.status, upstreamHeadersMs: this.upstreamHeadersMs, ...failureCode(err) })
      return
    }
    if (this.aborted) return this.settle({ kind: 'aborted' })
    // A body stream that failed (the multipart guard refusing a credential) keeps its error.
    const body = this.body
    const bodyError = body === null || Buffer.isBuffer(body) ? null : body.errored
    if (bodyError !== null) return this.settle({ kind: 'body_failed', error: bodyError })
    this.settle({ kind: 'failed', ...failureCode(err) })
  }

  private settle (outcome: ForwardOutcome): void {
    if (this.settled) return
    this.settled = true
    this.res.off('close', this.onClose)
    if (this.onDrain !== null) this.res.off('drain', this.onDrain)
    this.resolve(outcome)
  }
}

