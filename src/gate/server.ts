// createGate(config, deps): the running product, composed of its parts. The API listener runs
// proxy-listener.ts (the configuration API, then the stages of pipeline.ts, then forwarding);
// the optional forward-auth listener runs forward-auth.ts; health.ts answers probes and
// /metrics; lifecycle.ts counts requests in flight and drains them. No globals: tests start
// gates on port 0 and stop them; main.ts is the only place that reads the environment or signals.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { pino, type Logger } from 'pino'
import { loadCatalog, DEFAULT_CATALOG_DIR } from '../catalog/load.ts'
import { ConfigError, trustedPeers, type Config } from '../config.ts'
import { createGrantCache, type GrantCache } from '../grants/cache.ts'
import { createInstanceSettings } from '../grants/model.ts'
import type { GrantStore } from '../grants/store.ts'
import { createIdentityStage } from '../identity/stage.ts'
import type { ClosableJobResolver } from '../identity/types.ts'
import { createPolicyIndex } from '../catalog/policy-index.ts'
import { createProjectFinder } from '../projects/finder.ts'
import { createProjectFactsLookup } from '../projects/facts.ts'
import { createUpstream, type Upstream } from '../proxy/forward.ts'
import { API_PREFIX, createCanonicalizer } from '../routing/canonical.ts'
import { Router, type RouteMatch } from '../routing/router.ts'
import type { Engine } from './pipeline.ts'
import { createAdmin } from '../admin/handler.ts'
import type { TokenPermissionCheck } from '../admin/rest.ts'
import type { GitlabClient } from '../gitlab/client.ts'
import { createGitlabClientFromConfig } from './deps.ts'
import { createMetrics, type GateMetrics } from '../metrics.ts'
import { createUsageRecorder, NO_USAGE_RECORDING, type UsageRecorder } from '../usage/recorder.ts'
import { createDecisionLog } from './decision-log.ts'
import { createDecisionRecorder } from './record.ts'
import { createForwardAuth } from './forward-auth.ts'
import { createTurns } from './turns.ts'
import { createBodyBudget } from '../read-body.ts'
import type { Waiter } from '../waiters.ts'
import { createHealthServer } from './health.ts'
import { answering, limitClientConnections } from './connections.ts'
import { createLifecycle } from './lifecycle.ts'
import { createProxyHandler } from './proxy-listener.ts'
import { rawErrorAnswer, respond } from './respond.ts'
import { hasBody, newRequestId, requestIdOf } from './request.ts'
import { stdioOutput } from '../logging.ts'
import { createGraphqlEnforcer, type GraphqlEnforcer } from '../graphql/enforce.ts'
import { createDocumentCache, documentLimitsOf } from '../graphql/documents.ts'
import { loadGraphqlCatalog } from '../graphql/load.ts'
import { checkPermission, createTargetResolver, permissionLabels, type TargetResolver } from '../graphql/permission-check.ts'
import { loadGraphqlSchema } from '../graphql/schema.ts'
import { createTokenScopeResolver } from '../graphql/token-scopes.ts'
import { createTokenRegistry, handleRegistryRequest, isRegistryPath, type TokenRegistry } from '../graphql/token-registry.ts'
import { errors, GateError, type ErrorCode } from '../errors.ts'
import type { GraphQLSchema } from 'graphql'

export interface GateDeps {
  readonly store: GrantStore
  readonly resolver: ClosableJobResolver
  /**
   * The one client of GitLab's API (src/gate/deps.ts createGitlabClientFromConfig), for the
   * configuration API, the role checks and, when built with it, the resolver. Default: one made
   * from the configuration. The gate closes it, as it closes the store and the resolver.
   */
  readonly gitlab?: GitlabClient
  readonly logger?: Logger
  /** Default: a new registry per gate. */
  readonly metrics?: GateMetrics
  /** GitLab's GraphQL schema for the enforcement at /api/graphql. Default: GATE_GRAPHQL_SCHEMA's file, if set. */
  readonly graphqlSchema?: GraphQLSchema
  /**
   * How long a read of the grant store may take before the decision waiting on it fails closed
   * (503 GRANTS_STORE_UNAVAILABLE): createGrantCache's loadTimeoutMs, default 2000. No setting
   * holds it; tests give longer on a loaded machine.
   */
  readonly grantLoadTimeoutMs?: number
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
  /** The gate's GitLab client, for other callers of GitLab's API at start. */
  readonly gitlab: GitlabClient
}

export function createGate (config: Config, deps: GateDeps): Gate {
  if (config.upstreamUrl === undefined) throw new TypeError('createGate: config.upstreamUrl is required')
  // Default: stdout through src/logging.ts (a lost reader drops lines, never blocks or throws).
  const logger = deps.logger ?? pino({ name: 'job-token-gate' }, stdioOutput('stdout'))
  const metrics = deps.metrics ?? createMetrics()
  const catalogDir = config.catalogDir ?? DEFAULT_CATALOG_DIR
  // Addresses and CIDR ranges (net.BlockList); loadConfig has already refused a bad entry.
  const trusted = trustedPeers(config.trustedProxies)
  const upstream: Upstream = createUpstream({
    url: config.upstreamUrl,
    connections: config.upstreamConnections,
    headersTimeoutMs: config.upstreamHeadersTimeoutMs,
    bodyTimeoutMs: config.upstreamBodyTimeoutMs
  })
  const grants = createGrantCache({ store: deps.store, ttlMs: config.grantCacheTtlMs, staleWindowMs: config.grantStaleWindowMs, ...(deps.grantLoadTimeoutMs === undefined ? {} : { loadTimeoutMs: deps.grantLoadTimeoutMs }), onInvalidation: lag => { metrics.observeInvalidation(lag) } })
  // The invalidation subscription going down (for each cause while it stays down) and coming back:
  // meanwhile every job-token decision reads the store, and readiness fails (src/gate/health.ts).
  const stopWatchingStore = deps.store.subscribe(event => {
    if (event.kind === 'lost') logger.error({ store: deps.store.kind, reason: event.reason }, 'grants invalidation subscription down: decisions read the store, and readiness fails, until it is back')
    else if (event.kind === 'reset') logger.warn({ store: deps.store.kind, reason: event.reason }, 'grants cache flushed: invalidations may have been missed')
  })
  const settings = createInstanceSettings({ enforceInboundScope: config.enforceInboundScope, unknownProject: config.unknownProject, fineGrainedPolicies: config.fineGrainedPolicies })
  const canonicalize = createCanonicalizer({ relativeUrlRoot: config.relativeUrlRoot })
  // One bound on the body bytes every reader holds while clients send them (src/read-body.ts).
  const bodyBudget = createBodyBudget(config.bodyBudgetBytes)
  const identity = createIdentityStage({ resolver: deps.resolver, body: { maxBytes: config.maxInspectedBodyBytes, budget: bodyBudget } })
  // The configuration API (src/admin/, docs/admin.md): the proxy listener's first step.
  const gitlab = deps.gitlab ?? createGitlabClientFromConfig(config)
  // Group and instance routes: their project is found through GitLab's API with the service
  // token; without one nothing can be found, and deferring them all silently would be an open door.
  if (config.unresolvedProject === 'resolve' && !gitlab.hasServiceToken) {
    throw new ConfigError('GATE_UNRESOLVED_PROJECT=resolve (the default) finds the project of group and instance routes with GATE_SERVICE_TOKEN, which is not set: set it, or set GATE_UNRESOLVED_PROJECT to defer or deny')
  }
  const projects = config.unresolvedProject === 'resolve' ? createProjectFinder({ gitlab, ttlMs: config.projectLookupTtlMs, notFoundTtlMs: config.projectNotFoundTtlMs }) : undefined
  // Public and internal accessed projects: their visibility and features, for the denies they could turn.
  const projectFacts = createProjectFactsLookup({ gitlab, ttlMs: config.projectLookupTtlMs })
  // Fine-grained tokens GitLab will not describe: the operator registers them by hash, kept in
  // GATE_GRAPHQL_TOKEN_REGISTRY_FILE when set (read-only there: changes through the API refused).
  const tokenRegistry = openTokenRegistry(config.graphqlTokenRegistryFile, logger)
  // One token scope resolver and one target resolver for /api/graphql and the configuration API's REST endpoints.
  const { enforcer: graphql, tokenPermissions } = createGraphqlEnforcement(config, gitlab, logger, metrics, deps.graphqlSchema, tokenRegistry)
  const admin = createAdmin({
    gitlab, respond, relativeUrlRoot: config.relativeUrlRoot, adminToken: config.adminToken,
    store: deps.store, grants, logger, settings, policies: () => engine.policies, routes: () => engine.router.routes, graphql, tokenPermissions, bodyBudget,
    shadowPackageRules: config.mode === 'shadow' || config.shadowResources.includes('packages'),
    tokenRegistry: { owns: isRegistryPath, handle: request => handleRegistryRequest(tokenRegistry, request) },
    // Asked by path, a project GitLab does not show has id 0.
    projectOfPath: async (path, client) => { const found = await projectFacts.get(path, client); return found.id > 0 ? found.id : null },
    ...(projects === undefined
      ? {}
      : {
          projectOfRoute: async (match: RouteMatch, client?: Waiter) => {
            const found = await projects.find(match.route, match.params, undefined, client)
            return found.kind === 'project' ? found.id : found.kind === 'uncertain' ? 'uncertain' as const : null
          }
        }),
    refused: code => { metrics.admin.refused(code) }
  })

  const buildEngine = (): Engine => {
    const catalog = loadCatalog(catalogDir)
    return Object.freeze({
      // Mounted where canonicalize() puts the API: requests are matched by their whole path.
      router: Router.compile(catalog.routes, { mount: config.relativeUrlRoot + API_PREFIX }),
      canonicalize,
      policies: createPolicyIndex(catalog.policies),
      settings,
      grants,
      identity,
      userRoles: admin.roles,
      ...(projects === undefined ? {} : { projects }),
      projectFacts,
      catalogVersion: catalog.version,
      options: {
        mode: config.mode,
        shadowResources: config.shadowResources,
        nonApiJobTokens: config.nonApiJobTokens,
        jobTokenOnOtherRoutes: config.jobTokenOnOtherRoutes,
        unresolvedProject: config.unresolvedProject,
        relativeUrlRoot: config.relativeUrlRoot
      }
    })
  }
  // An invalid catalog stops the start: the constructor throws CatalogError naming the entry.
  let engine: Engine = buildEngine()
  metrics.catalogReloaded(true)
  let resources: ReadonlySet<string> = new Set(engine.router.routes.map(r => r.resource))
  // A name the catalog has no routes for (`package` for `packages`) would shadow nothing, and the
  // roll-out meant to only log that resource's denies would enforce them, without a word.
  const unknownShadow = config.shadowResources.filter(resource => !resources.has(resource))
  if (unknownShadow.length > 0) {
    throw new ConfigError(`GATE_SHADOW_RESOURCES names no catalog resource: ${unknownShadow.join(', ')} (the catalog's resources: ${[...resources].sort().join(', ')})`)
  }
  const lifecycle = createLifecycle(logger, metrics)
  metrics.attach({
    inFlight: lifecycle.inFlight,
    grants: () => grants.stats(),
    store: () => deps.store.health(),
    upstreamPool: () => upstream.pool.stats,
    bodyBudget: () => bodyBudget,
    identity: () => deps.resolver.stats?.(),
    gitlab: () => gitlabCalls(gitlab, deps.resolver.gitlab),
    projectLookups: () => projects?.stats().slots,
    catalog: () => ({ version: engine.catalogVersion, routes: engine.router.routes.length }),
    resources: () => resources
  })
  const usage = !config.usageRecording ? NO_USAGE_RECORDING : createUsageRecorder({
    store: deps.store,
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
  const record = createDecisionRecorder(metrics, createDecisionLog(logger, { level: config.decisionLogLevel, sampleRate: config.decisionLogSampleRate, repeatWindowMs: config.decisionLogRepeatWindowMs, rawPath: config.logRawPath }), usage)
  const currentEngine = (): Engine => engine

  const proxy = createProxyHandler({ engine: currentEngine, admin, upstream, draining: lifecycle.draining, record })
  // A connection's requests one at a time, in order, as GitLab's own server takes them (createTurns).
  const turnOf = createTurns(logger)
  const onRequest = (expectContinue: boolean) => (req: IncomingMessage, res: ServerResponse): void => {
    if (refusedWithoutHost(req, res)) return
    const turn = turnOf(req, res)
    if (turn === false) return
    const peerTrusted = trusted(req.socket.remoteAddress)
    const requestId = requestIdOf(req, peerTrusted)
    // A pipelined request counts as in flight while it waits: a drain lets it be answered.
    lifecycle.track(req, res, requestId, turn === true
      ? proxy(req, res, requestId, peerTrusted, expectContinue)
      : turn.then(started => started ? proxy(req, res, requestId, peerTrusted, expectContinue) : undefined))
  }
  // Client timeouts are about pauses, not totals: a 10 GiB upload on a slow link must not be cut
  // at a fixed time. The socket's inactivity timeout (both directions) ends a stalled client;
  // its request headers must arrive within a minute. An idle connection is kept longer than the
  // front proxy keeps it (Node's own 5 s is shorter than nginx's and load balancers' 60 s): the
  // side that closes first must be the proxy, or a request it sends as the gate closes fails.
  // A missing Host is refused by the gate (refuseUnparseable), not by Node: see there.
  const clientTimeouts = { requestTimeout: 0, headersTimeout: Math.min(60_000, config.clientTimeoutMs), keepAliveTimeout: config.clientKeepAliveTimeoutMs, requireHostHeader: false }
  // A client that half-closes after its request is taken as gone (Node's httpAllowHalfOpen off,
  // as nginx's proxy and Workhorse take it): nothing tells it from one that closed and left, whose
  // upstream request and lookups are given up (test/security/client-half-close.test.ts).
  const server: Server = createServer(clientTimeouts)
  keepEveryHeader(server)
  const refusedWithoutHost = refuseUnparseable(server, logger, metrics, config.decisionLogLevel)
  server.setTimeout(config.clientTimeoutMs)
  server.on('request', onRequest(false))
  // Answer `Expect: 100-continue` only once the request is authorized (or its body must be read).
  server.on('checkContinue', onRequest(true))

  let auth: Server | null = null
  if (config.authListen !== undefined) {
    const authorize = createForwardAuth({ engine: currentEngine, admin, trusted, maxInspectedBodyBytes: config.maxInspectedBodyBytes, bodyBudget, bodies: config.forwardAuthBodies, original: config.forwardAuthOriginal, record })
    const authTurnOf = createTurns(logger)
    auth = createServer(clientTimeouts, (req, res) => {
      if (refusedAuthWithoutHost(req, res)) return
      const turn = authTurnOf(req, res)
      if (turn === false) return
      // A new id per decision: the front proxy's X-Request-Id is not read here.
      const requestId = newRequestId()
      lifecycle.track(req, res, requestId, turn === true ? authorize(req, res, requestId) : turn.then(started => started ? authorize(req, res, requestId) : undefined))
    }).setTimeout(config.clientTimeoutMs)
    keepEveryHeader(auth)
    const refusedAuthWithoutHost = refuseUnparseable(auth, logger, metrics, config.decisionLogLevel)
  }

  const health: Server = createHealthServer({
    metrics,
    logger,
    store: () => deps.store.health(),
    catalog: () => ({ version: engine.catalogVersion, routes: engine.router.routes.length }),
    upstreamUsable: () => upstream.usable(),
    draining: lifecycle.draining
  })
  // Client connections bounded below the open files limit, those refused counted and logged.
  const connections = limitClientConnections({ api: server, auth, health }, config.maxConnections, logger, metrics)

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
        return { ok: true, version: engine.catalogVersion }
      } catch (err) {
        metrics.catalogReloaded(false)
        return { ok: false, error: (err as Error).message }
      }
    },
    async close (drainMs = config.drainTimeoutMs) {
      const drained = lifecycle.drain(drainMs)
      server.close()
      server.closeIdleConnections()
      auth?.close()
      auth?.closeIdleConnections()
      await drained
      server.closeAllConnections()
      auth?.closeAllConnections()
      health.close()
      health.closeAllConnections()
      connections.close()
      grants.close()
      stopWatchingStore()
      await usage.close()
      // The resolver first: it may share the GitLab client, which is closed once, here.
      await Promise.allSettled([upstream.close(), deps.resolver.close().finally(() => gitlab.close()), deps.store.close()])
    },
    grants,
    inFlight: lifecycle.inFlight,
    metrics,
    usage,
    gitlab
  }
}

/**
 * Node's HTTP server silently leaves out of `req.headers` every header line after the first
 * 1,000 (and out of `req.rawHeaders` after about 1,023), while its parser still frames the body
 * by all of them. What the gate does not see it cannot decide on: in forward-auth the front
 * proxy passes every line on to GitLab (nginx up to 1,000 of the client's, after its own
 * X-Original-* lines; Traefik with no limit), so a Job-Token or a Content-Type after the 1,000th
 * line reached Rails unchecked. With no count limit every line is read; their total size stays
 * bounded by the server's maxHeaderSize (16 KiB by default).
 */
function keepEveryHeader (server: Server): void {
  server.maxHeadersCount = 0
}

/** Node's parser errors with an answer of their own; every other one is REQUEST_NOT_PARSEABLE. */
const PARSER_ERRORS: Readonly<Record<string, ErrorCode>> = {
  HPE_HEADER_OVERFLOW: 'REQUEST_HEADERS_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'REQUEST_HEADERS_TIMEOUT'
}

/**
 * A request Node's HTTP parser refuses reaches neither the stages nor GitLab: both Content-Length
 * and Transfer-Encoding, a repeated Content-Length, a Transfer-Encoding that does not end in
 * chunked, bare LF line ends, an obs-fold, a bad chunk size, a NUL or CR in a header line, headers
 * over the size limit or the headers timeout: the shapes of request smuggling. Node's own answer
 * was a 400 without a body, with nothing logged or counted, so such attempts went unseen. Here the
 * client gets the gate's JSON error, and the decision log a line (stage `http_parser`) naming the
 * parser's error code and reason (llhttp's fixed texts: never the bytes refused, which may hold a
 * token), counted in the requests metric under the code.
 */
function refuseUnparseable (server: Server, logger: Logger, metrics: GateMetrics, level: string): (req: IncomingMessage, res: ServerResponse) => boolean {
  /** Counts and logs a refusal of what never became a request; its request id. */
  const logged = (code: ErrorCode, method: string, fields: Record<string, unknown>): string => {
    const requestId = newRequestId()
    metrics.observeRequest({ decision: 'deny', reason: code, resource: undefined, method, decisionSeconds: 0, totalSeconds: 0 })
    logger[level as 'info']({ request_id: requestId, ...(method === '' ? {} : { method }), decision: 'deny', reason: code, stage: 'http_parser', ...fields, status: errors[code].status }, 'decision')
    return requestId
  }
  const refuse = (socket: Duplex, code: ErrorCode, method: string, fields: Record<string, unknown>, ownBody: boolean): void => {
    const requestId = logged(code, method, fields)
    // Answered only where the client reads the answer as this request's: a client reads a
    // connection's answers in the order of its requests, so while an earlier request waits for its
    // own (a pipelined CONNECT or malformed request behind a GET GitLab is still answering), an
    // answer written now would be taken for that request's. The connection then just closes. The
    // answer being written belongs to the request at fault only while that request's body is
    // still being read (a bad chunk size) and nothing of it has gone.
    const current = answering(socket)
    if (current === undefined || current === null || (ownBody && !current.headersSent && !current.req.complete)) socket.write(rawErrorAnswer(code, requestId))
    socket.destroy()
  }
  /** Connections whose client sent bytes after a request that closes them (closeAfterAnswers). */
  const closing = new WeakSet<Duplex>()
  server.on('clientError', (err: Error & { code?: string, reason?: string }, socket: Duplex) => {
    // Logged once: the parser refuses every later read of such a connection again.
    if (closing.has(socket)) return
    // A connection the client reset or closed has nobody to answer. A client that closes its side
    // mid-request (a cancelled upload) leaves the socket writable (Node's server allows half-open
    // connections): the parser's error for it is the early end, no framing the gate refuses, and a
    // request begun has its own line (CLIENT_ABORTED). Nor has one whose last answer has gone.
    if (err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE' || !socket.writable) {
      socket.destroy()
      return
    }
    // Bytes after a request that closes its connection (`Connection: close`, or HTTP/1.0 without
    // keep-alive) are never read as a request. That request is decided and owed its whole answer,
    // which may still be on its way from GitLab: closing the connection at the parser's refusal
    // lost it. One line, as for any refusal; the connection closes after its answers.
    if (err.code === 'HPE_CLOSED_CONNECTION' && answering(socket) != null) {
      closing.add(socket)
      logged('REQUEST_NOT_PARSEABLE', '', { parser_error: err.code, parser_reason: err.reason })
      closeAfterAnswers(socket as Socket, server.timeout)
      return
    }
    refuse(socket, PARSER_ERRORS[err.code ?? ''] ?? 'REQUEST_NOT_PARSEABLE', '', { parser_error: err.code, parser_reason: err.reason }, true)
  })
  // Node hands a CONNECT over as a tunnel, not a request, and without a listener resets it: no
  // answer, no line. The gate tunnels nothing; it answers 405 like any refusal.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    refuse(socket, 'CONNECT_NOT_SUPPORTED', 'CONNECT', {}, false)
  })
  // An Expect other than 100-continue is never a request either: Node answered it 417 itself, an
  // empty body with nothing logged or counted (GitLab's Workhorse answers 417 too).
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    // A body we did not read is not drained: the connection closes after the answer.
    respond(res, logged('EXPECTATION_NOT_SUPPORTED', req.method ?? '', {}), 'EXPECTATION_NOT_SUPPORTED', hasBody(req))
  })
  // An HTTP/1.1 request without Host (RFC 9112 3.2: a server must answer it 400) is no request
  // either: Node answered it 400 itself (its requireHostHeader, which the listeners turn off), an
  // empty body with nothing logged or counted; Workhorse refuses it too. Answered here, before its
  // turn, as the 417 above: Node keeps a connection's answers in the order of its requests.
  return (req, res) => {
    if (req.headers.host !== undefined || req.httpVersionMajor !== 1 || req.httpVersionMinor !== 1) return false
    respond(res, logged('REQUEST_NOT_PARSEABLE', req.method ?? '', { parser_reason: 'missing Host header' }), 'REQUEST_NOT_PARSEABLE', true)
    return true
  }
}

/** The longest a connection closed after its answers reads what its client still sends: nginx's lingering_time. */
const LINGER_MS = 30_000

/**
 * A connection whose client sent more after a request that closes it: Go's net/http (Workhorse),
 * Puma and nginx answer that request in full and close, reading nothing after it as a request. So
 * does Node's server, which ends the connection once the last answer has gone (the socket's
 * destroySoon), but two things are the gate's to do. While the answers are written nothing more
 * is read: the client's bytes wait in TCP's buffers, so a client that sends on and reads nothing
 * is still cut by the socket's inactivity timeout (bytes read would count as activity). And a
 * connection closed with bytes unread is reset, which drops the end of an answer still in the
 * kernel's buffers (Go's net/http loses it so): as nginx does (lingering_close), the gate ends its
 * side after the answer, then reads and drops what comes until the client closes, or timeoutMs
 * (the client timeout, at most LINGER_MS) has passed.
 */
function closeAfterAnswers (socket: Socket, timeoutMs: number): void {
  socket.pause()
  socket.destroySoon = () => {
    if (socket.writable) socket.end()
    socket.resume()
    const linger = setTimeout(() => { socket.destroy() }, timeoutMs > 0 ? Math.min(timeoutMs, LINGER_MS) : LINGER_MS).unref()
    socket.once('close', () => { clearTimeout(linger) })
  }
}

/** The calls of the gate's GitLab client, plus those of a resolver that was given its own. */
function gitlabCalls (gitlab: GitlabClient, resolvers: GitlabClient | undefined): Record<string, number> {
  const calls = { ...gitlab.stats() }
  if (resolvers !== undefined && resolvers !== gitlab) for (const [k, n] of Object.entries(resolvers.stats())) calls[k] = (calls[k] ?? 0) + n
  return calls
}

/** The token registry of GATE_GRAPHQL_TOKEN_REGISTRY_FILE, or in memory; a file it cannot use stops the start. */
function openTokenRegistry (file: string | undefined, logger: Logger): TokenRegistry {
  if (file === undefined || file === '') return createTokenRegistry()
  let registry: TokenRegistry
  try {
    registry = createTokenRegistry({ file })
  } catch (err) {
    throw new ConfigError(`GATE_GRAPHQL_TOKEN_REGISTRY_FILE: ${(err as Error).message}`)
  }
  logger.info({ file, registrations: registry.list().length, read_only: registry.readOnly }, registry.readOnly
    ? 'fine-grained token registry read from a read-only file: changes through the API are refused'
    : 'fine-grained token registry read; changes through the API are saved to its file')
  return registry
}

/**
 * The enforcement of fine-grained personal access tokens at /api/graphql (src/graphql/enforce.ts):
 * the GraphQL catalog, the documents cache, the token's scopes and its targets read from GitLab
 * with the gate's one client. Targets are looked up with GATE_SERVICE_TOKEN; without it, a
 * decision that needs one fails closed. The same scopes and targets decide the configuration
 * API's REST endpoints (`tokenPermissions`, src/admin/rest.ts).
 */
function createGraphqlEnforcement (config: Config, gitlab: GitlabClient, logger: Logger, metrics: GateMetrics, given: GraphQLSchema | undefined, registry: TokenRegistry): { enforcer: GraphqlEnforcer, tokenPermissions: TokenPermissionCheck } {
  // A schema file that is missing or does not build stops the start (ConfigError naming GATE_GRAPHQL_SCHEMA).
  const schema = given ?? (config.graphqlSchema === undefined || config.graphqlSchema === '' ? undefined : loadGraphqlSchema(config.graphqlSchema))
  const catalog = loadGraphqlCatalog()
  const labels = permissionLabels(catalog)
  const targets: TargetResolver = gitlab.hasServiceToken
    ? createTargetResolver({ gitlab })
    : async () => { throw new GateError('GRAPHQL_TARGET_LOOKUP_FAILED', 'GATE_SERVICE_TOKEN is not set: the project or group of a GraphQL request cannot be looked up') }
  const scopes = createTokenScopeResolver({ gitlab, registry })
  const tokenPermissions: TokenPermissionCheck = {
    async scopes (token, client) {
      const found = await scopes.scopesOf(token, client)
      switch (found.kind) {
        case 'fine_grained': return { kind: 'fine_grained' }
        case 'legacy': return { kind: 'legacy', scopes: found.scopes }
        case 'refused': return { kind: 'refused' }
        case 'other': return { kind: 'unknown' }
      }
    },
    async check (token, permission, project, fresh, client) {
      const found = await scopes.scopesOf(token, client)
      if (found.kind !== 'fine_grained') return { kind: 'not_fine_grained' }
      // The path's :id: digits are an id, anything else a URL-encoded full path.
      const decoded = decodeURIComponent(project)
      const target = /^\d+$/.test(decoded) ? { kind: 'project' as const, id: decoded, from: ':id' } : { kind: 'project' as const, path: decoded, from: ':id' }
      const verdict = await checkPermission(found, [{ permission, boundary: 'Project' }], target, targets, { labels, ...(fresh === undefined ? {} : { fresh }), ...(client === undefined ? {} : { waiter: client }) })
      return verdict.ok ? { kind: 'granted' } : { kind: 'missing', permission: verdict.permission, message: verdict.message }
    }
  }
  const enforcer = createGraphqlEnforcer({
    scopes,
    checkPermission: async (scopes, needs, target, fresh, client) => await checkPermission(scopes, needs, target, targets, { labels, ...(fresh === undefined ? {} : { fresh }), ...(client === undefined ? {} : { waiter: client }) }),
    documents: createDocumentCache({ limits: documentLimitsOf(config) }),
    catalog,
    ...(schema === undefined ? {} : { schema }),
    logger,
    // Shadow mode covers GraphQL refusals as a whole; GATE_SHADOW_RESOURCES names REST resources only.
    shadow: config.mode === 'shadow',
    onDecision: (decision, reason, permission) => { metrics.graphql.decided(decision, reason, permission) }
  })
  return { enforcer, tokenPermissions }
}
