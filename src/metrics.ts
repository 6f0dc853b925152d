// Every Prometheus metric of the gate, in one module, prefix `job_token_gate_`. One Registry per
// gate (no global registry: tests start many gates in one process). Labels are bounded sets only
// — decision, reason code, catalog resource, method — never a raw path, project id or token;
// a value outside its set is recorded as `other`. Counters that other modules already keep
// (grant cache, identity cache, upstream pool, ...) are read at scrape time, one group per source
// (src/metrics/collectors.ts), so the request path pays nothing for them.

import { collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import { errors, GATE_REASONS, type AllowReason, type Reason } from './errors.ts'
import type { GrantCacheStats } from './grants/cache.ts'
import type { StoreHealth } from './grants/store.ts'
import type { IdentityStats } from './identity/types.ts'
import { adminMetrics, catalogMetrics, connectionMetrics, gitlabMetrics, grantMetrics, graphqlMetrics, identityMetrics, loggingMetrics, projectLookupMetrics, upstreamPoolMetrics, usageMetrics, type AdminRefusalMetrics, type ConnectionMetrics, type GraphqlDecisionMetrics, type PoolStats } from './metrics/collectors.ts'
import type { ProjectFinderStats } from './projects/finder.ts'
import { HotCounter, HotHistogram, registerHot as hot } from './metrics/hot.ts'

export const PREFIX = 'job_token_gate_'

/** Verdicts of src/gate/pipeline.ts. */
export const DECISIONS = ['allow', 'deny', 'would_deny', 'deferred', 'no_job_token', 'error'] as const

const ALLOW_REASONS = ['SELF_ACCESS', 'INBOUND_DISABLED', 'UNKNOWN_PROJECT_ALLOWED', 'DEFAULT_PERMISSIONS', 'FINE_GRAINED_POLICIES_OFF', 'SKIP_POLICIES', 'POLICIES_GRANTED', 'PUBLIC_PROJECT_FEATURES', 'PUBLIC_PROJECT_READ'] as const
// Fails to compile when AllowReason (src/errors.ts) gains a reason this list lacks.
const allowReasonsComplete: Exclude<AllowReason, typeof ALLOW_REASONS[number]> extends never ? true : never = true
void allowReasonsComplete

/** Every value the `reason` label can take. */
export const REASONS: ReadonlySet<string> = new Set<string>([...Object.keys(errors), ...ALLOW_REASONS, ...GATE_REASONS, 'other'])
export const METHODS: ReadonlySet<string> = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'other'])
const DECISION_SET: ReadonlySet<string> = new Set([...DECISIONS, 'other'])
/** Status class labels by hundreds (0: below 100), built once: a label built per request was a new string to hash. */
const STATUS_CLASSES: readonly string[] = ['other', '1xx', '2xx', '3xx', '4xx', '5xx']

/** 10 µs to 30 s: a cache hit decides in microseconds, an upload streams for seconds. */
export const DURATION_BUCKETS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
  0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30
]

/** One decided request, as server.ts reports it once the exchange is over. */
export interface RequestObservation {
  readonly decision: string
  /** Typed: a reason outside the union (errors table, allow reasons, the gate's own) does not compile. */
  readonly reason: Reason
  /** The matched route's catalog resource; undefined when no route matched. */
  readonly resource: string | undefined
  readonly method: string
  /** Seconds in the gate before forwarding or answering. */
  readonly decisionSeconds: number
  /** Seconds until the upstream's response headers; undefined when nothing was forwarded. */
  readonly upstreamHeadersSeconds?: number
  readonly totalSeconds: number
  /** The upstream's status, when it answered. */
  readonly upstreamStatus?: number
}

/** What the gate lends the metrics to read at scrape time. */
export interface MetricSources {
  readonly inFlight: () => number
  readonly grants: () => GrantCacheStats
  readonly store: () => Promise<StoreHealth>
  readonly upstreamPool: () => PoolStats
  /** Body bytes held while clients send them, and their bound (src/read-body.ts). */
  readonly bodyBudget: () => { readonly held: number, readonly max: number }
  readonly identity: () => IdentityStats | undefined
  /** The gate's GitLab client's calls, keyed `endpoint:outcome` (src/gitlab/client.ts). */
  readonly gitlab: () => Readonly<Record<string, number>>
  /** The project finder's lookup slots (src/projects/slots.ts); undefined without a finder. */
  readonly projectLookups?: () => ProjectFinderStats['slots'] | undefined
  readonly catalog: () => { version: string, routes: number }
  /** Catalog resources: the `resource` label's set. */
  readonly resources: () => ReadonlySet<string>
}

export interface GateMetrics {
  readonly registry: Registry
  /** Binds the gate's state for collect callbacks; called once by createGate. */
  attach (sources: MetricSources): void
  /** Hot path: one counter and up to three histogram observations per request. */
  observeRequest (o: RequestObservation): void
  /** The grant cache's onInvalidation hook. */
  observeInvalidation (lagMs: number): void
  catalogReloaded (ok: boolean): void
  readonly usage: { recorded (n: number): void, dropped (n: number): void, writeFailed (): void, flushed (): void }
  /** Fine-grained personal access tokens at /api/graphql (src/graphql/enforce.ts). */
  readonly graphql: GraphqlDecisionMetrics
  /** The configuration API's refusals (src/admin/handler.ts). */
  readonly admin: AdminRefusalMetrics
  /** The listeners' client connections and those closed unserved (src/gate/connections.ts). */
  readonly connections: ConnectionMetrics
  /** The exposition text; enables the default process metrics on first use. */
  scrape (): Promise<string>
  readonly contentType: string
}

export function normalizeMethod (method: string): string {
  return METHODS.has(method) ? method : 'other'
}

export function createMetrics (registry: Registry = new Registry()): GateMetrics {
  let sources: MetricSources | null = null
  const resourceSet = (): ReadonlySet<string> => sources?.resources() ?? new Set()
  const name = (n: string): string => PREFIX + n
  const scope = { registry, name }
  // One health check per scrape for the two store gauges (Redis: a PING).
  let health: { at: number, value: Promise<StoreHealth> } | null = null
  const storeHealth = (): Promise<StoreHealth> => {
    if (sources === null) return Promise.reject(new Error('not attached'))
    const now = performance.now()
    if (health === null || now - health.at > 1000) {
      health = { at: now, value: sources.store().catch((err: unknown): StoreHealth => ({ ok: false, kind: 'memory', mode: 'unknown', subscribed: false, detail: (err as Error).message })) }
    }
    return health.value
  }

  // Requests. The per-request series are hot: see src/metrics/hot.ts.
  const requests = hot(registry, new HotCounter(name('requests_total'),
    'Requests by decision, reason code, catalog resource (none: no route matched) and method', ['decision', 'reason', 'resource', 'method']))
  const decisionDuration = hot(registry, new HotHistogram(name('decision_duration_seconds'),
    'Time in the gate before forwarding or answering (canonicalize to decide), by decision', 'decision', DURATION_BUCKETS))
  const upstreamHeaders = hot(registry, new HotHistogram(name('upstream_headers_duration_seconds'),
    'Time from sending a request upstream to its response headers', null, DURATION_BUCKETS))
  const requestDuration = hot(registry, new HotHistogram(name('request_duration_seconds'),
    'Whole request duration, bodies included, by decision', 'decision', DURATION_BUCKETS))
  const upstreamResponses = hot(registry, new HotCounter(name('upstream_responses_total'),
    'Responses of the upstream by status class', ['status_class']))
  new Gauge({
    name: name('in_flight_requests'),
    help: 'Requests being handled (API and forward-auth listeners)',
    registers: [registry],
    collect () { this.set(sources?.inFlight() ?? 0) }
  })
  new Gauge({
    name: name('request_body_bytes'),
    help: 'Bytes of request bodies held while their clients send them (held), and their bound (budget, GATE_BODY_BUDGET_BYTES; 0: none)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect () {
      const budget = sources?.bodyBudget()
      if (budget === undefined) return
      this.set({ state: 'held' }, budget.held)
      this.set({ state: 'budget' }, budget.max)
    }
  })

  // Read at scrape time, one group per source (src/metrics/collectors.ts).
  const { invalidationLag } = grantMetrics(scope, {
    stats: () => sources?.grants(),
    health: () => sources === null ? undefined : storeHealth()
  })
  identityMetrics(scope, () => sources?.identity())
  gitlabMetrics(scope, () => sources?.gitlab())
  projectLookupMetrics(scope, () => sources?.projectLookups?.())
  upstreamPoolMetrics(scope, () => sources?.upstreamPool())
  const catalog = catalogMetrics(scope, () => sources?.catalog())
  const usage = usageMetrics(scope)
  loggingMetrics(scope)
  const graphql = graphqlMetrics(scope)
  const admin = adminMetrics(scope)
  const connections = connectionMetrics(scope)

  let processMetrics = false
  return {
    registry,
    contentType: registry.contentType,
    attach (s) {
      sources = s
      // Known series exist from the start, so dashboards and alerts find them at zero.
      for (const decision of DECISIONS) {
        decisionDuration.zero(decision)
        requestDuration.zero(decision)
      }
    },
    // Hot path: runs once per request, after the answer.
    observeRequest (o) {
      const decision = DECISION_SET.has(o.decision) ? o.decision : 'other'
      const reason = REASONS.has(o.reason) ? o.reason : 'other'
      const resource = o.resource === undefined ? 'none' : resourceSet().has(o.resource) ? o.resource : 'other'
      requests.inc(decision, reason, resource, normalizeMethod(o.method))
      decisionDuration.observe(o.decisionSeconds, decision)
      requestDuration.observe(o.totalSeconds, decision)
      if (o.upstreamHeadersSeconds !== undefined) upstreamHeaders.observe(o.upstreamHeadersSeconds)
      if (o.upstreamStatus !== undefined) {
        upstreamResponses.inc(STATUS_CLASSES[Math.floor(o.upstreamStatus / 100)] ?? 'other')
      }
    },
    observeInvalidation (lagMs) {
      invalidationLag.observe(lagMs / 1000)
    },
    catalogReloaded (ok) {
      catalog.reloaded(ok)
    },
    usage,
    graphql,
    admin,
    connections,
    async scrape () {
      if (!processMetrics) {
        // Lazily: the default collectors start an event-loop monitor and a GC observer that
        // live as long as the process, which a test suite starting many gates should not pay.
        processMetrics = true
        collectDefaultMetrics({ register: registry })
      }
      health = null
      return await registry.metrics()
    }
  }
}
