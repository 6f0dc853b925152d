// createGate(config, deps): the running product. One HTTP listener proxies API traffic through
// the stages of pipeline.ts; a second one answers health checks. No globals: tests start gates
// on port 0 and stop them; main.ts is the only place that reads the environment or signals.

import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Readable } from 'node:stream'
import { pino, type Logger } from 'pino'
import { loadCatalog, DEFAULT_CATALOG_DIR } from '../catalog/load.ts'
import type { Config } from '../config.ts'
import { errorBody, errors, type ErrorCode } from '../errors.ts'
import { createGrantCache, type GrantCache } from '../grants/cache.ts'
import { createInstanceSettings } from '../grants/model.ts'
import type { GrantStore } from '../grants/store.ts'
import { createBodyScanner } from '../identity/body-scan.ts'
import { collectCredentials } from '../identity/credentials.ts'
import { createIdentityStage } from '../identity/stage.ts'
import { IdentityError, type ClosableJobResolver } from '../identity/types.ts'
import { createPolicyIndex } from '../catalog/policy-index.ts'
import { forward, createUpstream, upstreamHeaders, type Upstream } from '../proxy/forward.ts'
import { createCanonicalizer } from '../routing/canonical.ts'
import { Router } from '../routing/router.ts'
import { newExchange, runStages, type Deny, type Engine, type Exchange } from './pipeline.ts'
import { createAdmin } from '../admin/handler.ts'
import { createMetrics, type GateMetrics } from '../metrics.ts'
import { createUsageRecorder, type UsageRecorder } from '../usage/recorder.ts'
import { createDecisionLog } from './decision-log.ts'
import { stdioOutput } from '../logging.ts'

export interface GateDeps {
  readonly store: GrantStore
  readonly resolver: ClosableJobResolver
  readonly logger?: Logger
  /** Default: a new registry per gate. */
  readonly metrics?: GateMetrics
}

export interface Gate {
  /** Starts both listeners; resolves when they accept connections. */
  listen (): Promise<void>
  readonly address: () => AddressInfo
  readonly healthAddress: () => AddressInfo
  /** The forward-auth listener, when GATE_AUTH_LISTEN is set. */
  readonly authAddress: () => AddressInfo | null
  /** Reloads the catalog atomically; a bad catalog keeps the last good one. */
  reloadCatalog (): { ok: true, version: string } | { ok: false, error: string }
  /** Stops accepting, lets in-flight requests finish up to drainMs, then closes everything. */
  close (drainMs?: number): Promise<void>
  readonly grants: GrantCache
  readonly inFlight: () => number
  readonly metrics: GateMetrics
  /** Least-privilege usage recording (flush() for tests). */
  readonly usage: UsageRecorder
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/
/** Allow reasons that went through an allowlist entry: what the least-privilege report counts. */
const USAGE_REASONS: ReadonlySet<string> = new Set(['DEFAULT_PERMISSIONS', 'POLICIES_GRANTED', 'SKIP_POLICIES'])

export function createGate (config: Config, deps: GateDeps): Gate {
  if (config.upstreamUrl === undefined) throw new TypeError('createGate: config.upstreamUrl is required')
  // Default: stdout through src/logging.ts (a lost reader drops lines, never blocks or throws).
  const logger = deps.logger ?? pino({ name: 'job-token-gate' }, stdioOutput('stdout'))
  const metrics = deps.metrics ?? createMetrics()
  const catalogDir = config.catalogDir ?? DEFAULT_CATALOG_DIR
  const trusted = new Set(config.trustedProxies)
  const upstream: Upstream = createUpstream({
    url: config.upstreamUrl,
    connections: config.upstreamConnections,
    headersTimeoutMs: config.upstreamHeadersTimeoutMs,
    bodyTimeoutMs: config.upstreamBodyTimeoutMs
  })
  const grants = createGrantCache({ store: deps.store, ttlMs: config.grantCacheTtlMs, staleWindowMs: config.grantStaleWindowMs, onInvalidation: lag => { metrics.observeInvalidation(lag) } })
  const settings = createInstanceSettings({ enforceInboundScope: config.enforceInboundScope, unknownProject: config.unknownProject })
  const canonicalize = createCanonicalizer({ relativeUrlRoot: config.relativeUrlRoot })
  const bodyScanner = createBodyScanner({ maxBytes: config.maxInspectedBodyBytes })
  const identity = createIdentityStage({ resolver: deps.resolver, body: { maxBytes: config.maxInspectedBodyBytes } })
  // The configuration API (src/admin/, docs/admin.md), answered before the job-token stages.
  const admin = createAdmin({
    upstreamUrl: config.upstreamUrl, relativeUrlRoot: config.relativeUrlRoot, adminToken: config.adminToken, serviceToken: config.serviceToken,
    store: deps.store, grants, logger, settings, policies: () => engine.policies, routes: () => engine.router.routes
  })

  const buildEngine = (): Engine => {
    const catalog = loadCatalog(catalogDir)
    return Object.freeze({
      router: Router.compile(catalog.routes),
      canonicalize,
      policies: createPolicyIndex(catalog.policies),
      settings,
      grants,
      identity,
      userRoles: admin.roles,
      catalogVersion: catalog.version,
      options: {
        mode: config.mode,
        shadowResources: config.shadowResources,
        nonApiJobTokens: config.nonApiJobTokens,
        unresolvedProject: config.unresolvedProject
      }
    })
  }
  // An invalid catalog stops the start: the constructor throws CatalogError naming the entry.
  let engine: Engine & { catalogVersion?: string } = buildEngine()
  metrics.catalogReloaded(true)
  let resources: ReadonlySet<string> = new Set(engine.router.routes.map(r => r.resource))
  metrics.attach({
    inFlight: () => inFlight,
    grants: () => grants.stats(),
    store: () => deps.store.health(),
    upstreamPool: () => upstream.pool.stats,
    identity: () => deps.resolver.stats?.(),
    catalog: () => ({ version: engine.catalogVersion ?? '', routes: engine.router.routes.length }),
    resources: () => resources
  })
  const writeDecisionLog = createDecisionLog(logger, { level: config.decisionLogLevel, sampleRate: config.decisionLogSampleRate, rawPath: config.logRawPath })
  const usage = createUsageRecorder({
    store: config.usageRecording ? deps.store : { ...deps.store, recordUsage: undefined },
    limits: { maxJobProjects: config.usageMaxJobProjects, retentionDays: config.usageRetentionDays },
    flushIntervalMs: config.usageFlushIntervalMs,
    onRecorded: n => { metrics.usage.recorded(n) },
    onDropped: n => { metrics.usage.dropped(n) },
    onWriteFailed: err => {
      metrics.usage.writeFailed()
      logger.warn({ err: { message: (err as Error).message } }, 'usage write failed')
    },
    onFlushed: () => { metrics.usage.flushed() }
  })
  let inFlight = 0
  let draining = false
  const idle: Array<() => void> = []

  function answer (res: ServerResponse, requestId: string, deny: Deny, closeConnection: boolean): void {
    if (res.headersSent) {
      res.destroy()
      return
    }
    const body = JSON.stringify({ ...errorBody(deny.code, deny.message), request_id: requestId })
    res.writeHead(deny.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-request-id': requestId,
      ...(closeConnection ? { connection: 'close' } : {}),
      ...(deny.status === 503 ? { 'retry-after': '5' } : {}),
      ...deny.headers
    })
    res.end(body)
  }

  function hasBody (req: IncomingMessage): boolean {
    const length = req.headers['content-length']
    return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
  }

  /**
   * Everything that happens once per decided request: metrics, the decision log line, and the
   * usage record of an allowed job-token request. Off the answer's path: the response is sent.
   */
  function logDecision (x: Exchange, requestId: string, started: number, status: number, decidedAt?: number, upstreamHeadersMs?: number): void {
    const now = performance.now()
    const decisionMs = (decidedAt ?? now) - started
    const totalMs = now - started
    metrics.observeRequest({
      decision: x.verdict,
      reason: x.reason,
      resource: x.match?.route.resource,
      method: x.method,
      decisionSeconds: decisionMs / 1000,
      totalSeconds: totalMs / 1000,
      ...(upstreamHeadersMs === undefined ? {} : { upstreamHeadersSeconds: upstreamHeadersMs / 1000, upstreamStatus: status })
    })
    writeDecisionLog(x, requestId, status, { decisionMs, totalMs, ...(upstreamHeadersMs === undefined ? {} : { upstreamHeadersMs }) })
    const identity = x.identity
    if (x.verdict === 'allow' && identity !== null && x.match !== null && x.accessedProjectId !== null && x.accessedProjectId !== identity.jobProjectId && USAGE_REASONS.has(x.reason)) {
      usage.record(x.accessedProjectId, identity, x.match.route.skipPolicies ? [] : x.match.route.policies)
    }
  }

  async function handle (req: IncomingMessage, res: ServerResponse, expectContinue: boolean): Promise<void> {
    const started = performance.now()
    const peer = req.socket.remoteAddress ?? ''
    const peerTrusted = trusted.has(peer)
    const incomingId = req.headers['x-request-id']
    const requestId = peerTrusted && typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : randomUUID()
    let continued = false
    const sendContinue = (): void => {
      if (expectContinue && !continued) {
        continued = true
        res.writeContinue()
      }
    }
    const canonical = canonicalize(req.method ?? 'GET', req.url ?? '/')
    const adminAnswer = draining ? null : await admin.handle(req, res, canonical, requestId, sendContinue)
    if (adminAnswer?.kind === 'answered') return
    const x = newExchange(req.method ?? 'GET', req.url ?? '/', req.headers, req.rawHeaders, adminAnswer?.body ?? (hasBody(req) ? req : null), sendContinue)
    x.precomputed = canonical
    if (draining) {
      answer(res, requestId, deny('GATE_SHUTTING_DOWN'), true)
      return
    }
    const outcome = await runStages(x, engine)
    const decidedAt = performance.now()
    if (outcome.kind === 'deny') {
      // A body we did not read is not drained: the connection closes after the answer.
      answer(res, requestId, outcome.deny, x.body !== null && !req.complete)
      logDecision(x, requestId, started, outcome.deny.status, decidedAt)
      return
    }
    const forwardBody = x.forwardBody
    const body: Buffer | Readable | null = forwardBody === null ? null : forwardBody.kind === 'buffered' ? forwardBody.bytes : forwardBody.stream
    // The multipart guard may have refused the body while the stages ran: nothing is sent then.
    const early = body === null || Buffer.isBuffer(body) ? null : body.errored
    if (early !== null) {
      logDecision(x, requestId, started, refuseBody(x, res, requestId, early), decidedAt)
      return
    }
    if (forwardBody?.kind === 'stream') sendContinue()
    const headers = upstreamHeaders(req.headers, { peer, trusted: peerTrusted, tls: false }, requestId)
    if (Buffer.isBuffer(body)) headers['content-length'] = String(body.length)
    const authorized = x.canonical!
    const path = authorized.path + (authorized.query === '' ? '' : '?' + authorized.query)
    const result = await forward(upstream, req, res, { method: req.method ?? 'GET', path, headers, body })
    let status = 0
    switch (result.kind) {
      case 'done':
        status = result.status
        break
      case 'failed':
        x.verdict = 'error'
        x.reason = result.code
        status = deny(result.code).status
        answer(res, requestId, deny(result.code), !req.complete)
        break
      case 'body_failed':
        // The multipart guard found a credential it may not let through: the upstream request
        // was aborted before its last byte.
        status = refuseBody(x, res, requestId, result.error)
        break
      case 'aborted':
        x.reason = 'CLIENT_ABORTED'
        break
    }
    logDecision(x, requestId, started, status, decidedAt, result.kind === 'done' ? result.upstreamHeadersMs : undefined)
  }

  /** Answers a request whose body stream failed; returns the status sent. */
  function refuseBody (x: Exchange, res: ServerResponse, requestId: string, err: Error): number {
    const code: ErrorCode = err instanceof IdentityError ? err.code : 'BODY_NOT_PARSEABLE'
    x.verdict = 'deny'
    x.reason = code
    answer(res, requestId, deny(code), true)
    return deny(code).status
  }

  // Forward-auth: the same stages as a decision endpoint for nginx auth_request, Traefik
  // ForwardAuth and Envoy ext_authz. The original method and URI come from X-Original-* or
  // X-Forwarded-Method/-Uri (trusted peers only), else from the request itself (Envoy sends
  // the original method and path). Nothing is proxied.
  async function authorize (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now()
    const peerTrusted = trusted.has(req.socket.remoteAddress ?? '')
    const requestId = randomUUID()
    const header = (name: string): string | undefined => {
      const value = req.headers[name]
      return typeof value === 'string' && value !== '' ? value : undefined
    }
    const originalMethod = header('x-original-method') ?? header('x-forwarded-method')
    const originalUri = header('x-original-uri') ?? header('x-forwarded-uri')
    const x = newExchange(originalMethod ?? req.method ?? 'GET', originalUri ?? req.url ?? '/', req.headers, req.rawHeaders, hasBody(req) ? req : null)
    if ((originalMethod !== undefined || originalUri !== undefined) && !peerTrusted) {
      x.verdict = 'deny'
      x.reason = 'FORWARD_AUTH_UNTRUSTED'
      answer(res, requestId, deny('FORWARD_AUTH_UNTRUSTED'), false)
      logDecision(x, requestId, started, 403)
      return
    }
    // The configuration API and GraphQL's allowlist mutations are answered by the gate itself,
    // on the API listener: allowing them here would let them reach GitLab's own allowlist.
    if (admin.owns(canonicalize(x.method, x.target))) {
      x.verdict = 'deny'
      x.reason = 'FORWARD_AUTH_GATE_ENDPOINT'
      answer(res, requestId, deny('FORWARD_AUTH_GATE_ENDPOINT'), false)
      logDecision(x, requestId, started, 403)
      return
    }
    const outcome = await runStages(x, engine)
    const decidedAt = performance.now()
    let refusal = outcome.kind === 'deny' ? outcome.deny : null
    if (refusal === null && hiddenBodyMayHoldToken(x, req)) {
      x.verdict = 'deny'
      x.reason = 'BODY_NOT_VISIBLE'
      refusal = deny('BODY_NOT_VISIBLE')
    }
    if (refusal !== null) {
      answer(res, requestId, refusal, x.body !== null && !req.complete)
      logDecision(x, requestId, started, refusal.status, decidedAt)
      return
    }
    const body = JSON.stringify({ message: '200 OK', decision: x.verdict, reason: x.reason, request_id: requestId })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': requestId, 'x-job-token-gate-decision': x.verdict })
    res.end(body)
    logDecision(x, requestId, started, 200, decidedAt)
  }

  /**
   * nginx's auth_request never sends the body. If the original request declares a body GitLab
   * reads parameters from (form, JSON, multipart; X-Original-Content-Length or
   * X-Original-Transfer-Encoding), a job token in it would go unchecked, and GitLab prefers a
   * job_token parameter to the JOB-TOKEN header. Such a request to a route that accepts job
   * tokens passes only with a visible credential GitLab ranks before job tokens (a PAT or OAuth
   * token).
   */
  function hiddenBodyMayHoldToken (x: Exchange, req: IncomingMessage): boolean {
    if (x.body !== null || x.match === null) return false
    const length = Number(req.headers['x-original-content-length'] ?? '0')
    const chunked = req.headers['x-original-transfer-encoding'] !== undefined
    if (!(length > 0) && !chunked) return false
    const declared = { ...req.headers, 'content-length': String(length > 0 ? length : 1) }
    if (bodyScanner.plan(declared, x.method).kind === 'pass') return false
    const visible = collectCredentials({ canonical: x.canonical!, headers: req.headers, rawHeaders: req.rawHeaders, route: x.match.route })
    return !visible.some(c => !c.jobToken)
  }

  function deny (code: ErrorCode): Deny {
    return { code, status: errors[code].status, message: errors[code].message }
  }

  /** Counts the request in flight (for draining) and turns an unexpected failure into a 500. */
  function track (req: IncomingMessage, res: ServerResponse, work: Promise<void>): void {
    inFlight++
    work.catch((err: unknown) => {
      logger.error({ err: { message: (err as Error).message, stack: (err as Error).stack } }, 'unexpected error')
      metrics.observeRequest({ decision: 'error', reason: 'GATE_INTERNAL_ERROR', resource: undefined, method: req.method ?? 'GET', decisionSeconds: 0, totalSeconds: 0 })
      answer(res, 'unknown', deny('GATE_INTERNAL_ERROR'), true)
    }).finally(() => {
      inFlight--
      if (inFlight === 0) for (const resolve of idle.splice(0)) resolve()
    })
  }

  // Client timeouts are about pauses, not totals: a 10 GiB upload on a slow link must not be cut
  // at a fixed time. The socket's inactivity timeout (both directions) ends a stalled client;
  // its request headers must arrive within a minute.
  const clientTimeouts = { requestTimeout: 0, headersTimeout: Math.min(60_000, config.clientTimeoutMs) }
  const server: Server = createServer(clientTimeouts)
  server.setTimeout(config.clientTimeoutMs)
  server.on('request', (req, res) => track(req, res, handle(req, res, false)))
  // Answer `Expect: 100-continue` only once the request is authorized (or its body must be read).
  server.on('checkContinue', (req, res) => track(req, res, handle(req, res, true)))

  const auth: Server | null = config.authListen === undefined
    ? null
    : createServer(clientTimeouts, (req, res) => track(req, res, authorize(req, res))).setTimeout(config.clientTimeoutMs)

  const health: Server = createServer((req, res) => {
    if (req.url === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      metrics.scrape().then(text => {
        res.writeHead(200, { 'content-type': metrics.contentType })
        res.end(text)
      }, (err: unknown) => {
        logger.error({ err: { message: (err as Error).message } }, 'metrics scrape failed')
        res.writeHead(500, { 'content-type': 'text/plain' })
        res.end('metrics scrape failed\n')
      })
      return
    }
    void healthAnswer(req.url ?? '/').then(({ status, body }) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    })
  })

  async function healthAnswer (url: string): Promise<{ status: number, body: unknown }> {
    if (url === '/-/liveness') return { status: 200, body: { status: 'ok' } }
    if (url === '/-/readiness') {
      const store = await deps.store.health().catch((err: unknown) => ({ ok: false, detail: (err as Error).message }))
      const checks = {
        catalog: { ok: true, version: engine.catalogVersion, routes: engine.router.routes.length },
        store,
        upstream: { ok: upstream.usable() },
        draining
      }
      const ok = store.ok && upstream.usable() && !draining
      return { status: ok ? 200 : 503, body: { status: ok ? 'ok' : 'failed', checks } }
    }
    return { status: 404, body: { message: '404 Not Found' } }
  }

  const listenOn = (s: Server, host: string, port: number): Promise<void> => new Promise((resolve, reject) => {
    s.once('error', reject)
    s.listen(port, host, () => { s.off('error', reject); resolve() })
  })

  return {
    async listen () {
      await listenOn(server, config.listen.host, config.listen.port)
      await listenOn(health, config.healthListen.host, config.healthListen.port)
      if (auth !== null) await listenOn(auth, config.authListen!.host, config.authListen!.port)
    },
    address: () => server.address() as AddressInfo,
    healthAddress: () => health.address() as AddressInfo,
    authAddress: () => auth === null ? null : auth.address() as AddressInfo,
    reloadCatalog () {
      try {
        engine = buildEngine()
        resources = new Set(engine.router.routes.map(r => r.resource))
        metrics.catalogReloaded(true)
        return { ok: true, version: engine.catalogVersion ?? '' }
      } catch (err) {
        metrics.catalogReloaded(false)
        return { ok: false, error: (err as Error).message }
      }
    },
    async close (drainMs = config.drainTimeoutMs) {
      draining = true
      server.close()
      server.closeIdleConnections()
      auth?.close()
      auth?.closeIdleConnections()
      if (inFlight > 0) {
        await Promise.race([
          new Promise<void>(resolve => idle.push(resolve)),
          new Promise<void>(resolve => setTimeout(resolve, drainMs).unref())
        ])
        if (inFlight > 0) logger.warn({ drain_ms: drainMs, in_flight: inFlight }, 'drain timeout: closing the connections of requests still in flight')
      }
      server.closeAllConnections()
      auth?.closeAllConnections()
      health.close()
      health.closeAllConnections()
      grants.close()
      await usage.close()
      await Promise.allSettled([upstream.close(), deps.resolver.close(), deps.store.close()])
    },
    grants,
    inFlight: () => inFlight,
    metrics,
    usage
  }
}
