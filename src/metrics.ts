// Every Prometheus metric of the gate, in one module, prefix `job_token_gate_`. One Registry per
// gate (no global registry: tests start many gates in one process). Labels are bounded sets only
// — decision, reason code, catalog resource, method — never a raw path, project id or token;
// a value outside its set is recorded as `other`. Counters that other modules already keep
// (grant cache, identity cache, upstream pool) are read at scrape time by collect callbacks, so
// the request path pays nothing for them.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { errors, GATE_REASONS, type Reason } from './errors.ts'
import type { GrantCacheStats } from './grants/cache.ts'
import type { StoreHealth } from './grants/store.ts'
import type { IdentityStats } from './identity/types.ts'
import { DROP_REASONS, LOG_STREAMS, logLinesDropped } from './logging.ts'
import type { AllowReason } from './policy/decide.ts'
import { HotCounter, HotHistogram, registerHot as hot } from './metrics/hot.ts'

export const PREFIX = 'job_token_gate_'

/** Verdicts of src/gate/pipeline.ts. */
export const DECISIONS = ['allow', 'deny', 'would_deny', 'deferred', 'no_job_token', 'error'] as const

const ALLOW_REASONS = ['SELF_ACCESS', 'INBOUND_DISABLED', 'UNKNOWN_PROJECT_ALLOWED', 'DEFAULT_PERMISSIONS', 'SKIP_POLICIES', 'POLICIES_GRANTED'] as const
// Fails to compile when decide.ts gains an allow reason this list lacks.
const allowReasonsComplete: Exclude<AllowReason, typeof ALLOW_REASONS[number]> extends never ? true : never = true
void allowReasonsComplete

/** Every value the `reason` label can take. */
export const REASONS: ReadonlySet<string> = new Set<string>([...Object.keys(errors), ...ALLOW_REASONS, ...GATE_REASONS, 'other'])
export const METHODS: ReadonlySet<string> = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'other'])
const DECISION_SET: ReadonlySet<string> = new Set([...DECISIONS, 'other'])

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
  readonly upstreamPool: () => { connected: number, free: number, pending: number, queued: number, running: number, size: number }
  readonly identity: () => IdentityStats | undefined
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
  /** The exposition text; enables the default process metrics on first use. */
  scrape (): Promise<string>
  readonly contentType: string
}

export function normalizeMethod (method: string): string {
  return METHODS.has(method) ? method : 'other'
}

type Stat = keyof GrantCacheStats

export function createMetrics (registry: Registry = new Registry()): GateMetrics {
  let sources: MetricSources | null = null
  const resourceSet = (): ReadonlySet<string> => sources?.resources() ?? new Set()
  const name = (n: string): string => PREFIX + n
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

  // The per-request series are hot: see HotCounter/HotHistogram below.
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

  // Grant cache: counters kept by src/grants/cache.ts, exported at scrape time.
  const statCounter = (metric: string, stat: Stat, help: string): void => {
    new Counter({
      name: name(metric),
      help,
      registers: [registry],
      collect () {
        if (sources === null) return
        this.reset()
        this.inc(Math.max(0, sources.grants()[stat]))
      }
    })
  }
  statCounter('grant_cache_hits_total', 'hits', 'Grant cache lookups answered from memory (negative entries included)')
  statCounter('grant_cache_negative_hits_total', 'negativeHits', 'Grant cache hits on "unknown project/path" entries')
  statCounter('grant_cache_misses_total', 'misses', 'Grant cache lookups that went to the store or joined a load')
  statCounter('grant_cache_stale_served_total', 'staleServed', 'Entries served past their TTL because the store failed')
  statCounter('grant_cache_single_flight_waits_total', 'singleFlightWaits', 'Misses that joined a store read already in flight')
  statCounter('grant_cache_fail_closed_total', 'failClosed', 'Lookups refused (503) because the store failed and no usable entry was cached')
  statCounter('grant_store_errors_total', 'storeErrors', 'Store reads that failed or timed out')
  statCounter('grant_store_resets_total', 'resets', 'Invalidation subscription re-established (cache flushed: messages may have been missed)')
  statCounter('grant_invalidations_total', 'invalidationsReceived', 'Invalidation messages received')
  new Gauge({
    name: name('grant_cache_entries'),
    help: 'Entries in the grant cache by kind',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect () {
      if (sources === null) return
      const s = sources.grants()
      this.set({ kind: 'project' }, s.projectEntries)
      this.set({ kind: 'path' }, s.pathEntries)
    }
  })
  const invalidationLag = new Histogram({
    name: name('grant_invalidation_lag_seconds'),
    help: "Lag from a grants write to its invalidation arriving here (receiver's wall clock minus writer's)",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry]
  })
  new Gauge({
    name: name('grant_store_up'),
    help: 'Whether the grants store answers (1) or not (0), by store kind',
    labelNames: ['kind'] as const,
    registers: [registry],
    async collect () {
      if (sources === null) return
      const h = await storeHealth()
      this.reset()
      this.set({ kind: h.kind }, h.ok ? 1 : 0)
    }
  })
  new Gauge({
    name: name('grant_store_subscribed'),
    help: 'Whether invalidations are being received right now (1) or not (0)',
    registers: [registry],
    async collect () {
      if (sources === null) return
      const h = await storeHealth()
      this.set(h.subscribed ? 1 : 0)
    }
  })

  // Identity: kept by the resolver (src/identity/resolver.ts), read at scrape time.
  new Counter({
    name: name('identity_cache_lookups_total'),
    help: 'Job token cache lookups by result (hit, negative_hit: a remembered rejection, miss, single_flight_wait)',
    labelNames: ['result'] as const,
    registers: [registry],
    collect () {
      const s = sources?.identity()
      if (s === undefined) return
      this.reset()
      this.inc({ result: 'hit' }, s.tokenCache.hits)
      this.inc({ result: 'negative_hit' }, s.tokenCache.negativeHits)
      this.inc({ result: 'miss' }, s.tokenCache.misses)
      this.inc({ result: 'single_flight_wait' }, s.tokenCache.singleFlightWaits)
    }
  })
  new Counter({
    name: name('introspection_calls_total'),
    help: 'Calls to GitLab resolving job tokens (endpoint: job, project, group) by outcome (ok, rejected, failed, unavailable)',
    labelNames: ['endpoint', 'outcome'] as const,
    registers: [registry],
    collect () {
      const s = sources?.identity()
      if (s === undefined) return
      this.reset()
      for (const [key, n] of Object.entries(s.introspection)) {
        const [endpoint, outcome] = key.split(':') as [string, string]
        this.inc({ endpoint, outcome }, n)
      }
    }
  })
  new Counter({
    name: name('jwks_refreshes_total'),
    help: 'JWKS fetches by result (success: a new key set, failure: kept the last good keys or none)',
    labelNames: ['result'] as const,
    registers: [registry],
    collect () {
      const s = sources?.identity()
      if (s === undefined) return
      this.reset()
      this.inc({ result: 'success' }, s.jwksRefreshes)
      this.inc({ result: 'failure' }, s.jwksFailures)
    }
  })

  // Upstream pool (undici Pool.stats).
  new Gauge({
    name: name('upstream_pool_connections'),
    help: 'Upstream pool connections by state (connected, free) and the pool size',
    labelNames: ['state'] as const,
    registers: [registry],
    collect () {
      if (sources === null) return
      const s = sources.upstreamPool()
      this.set({ state: 'connected' }, s.connected)
      this.set({ state: 'free' }, s.free)
      this.set({ state: 'size' }, s.size)
    }
  })
  new Gauge({
    name: name('upstream_pool_requests'),
    help: 'Upstream pool requests by state (running, pending, queued)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect () {
      if (sources === null) return
      const s = sources.upstreamPool()
      this.set({ state: 'running' }, s.running)
      this.set({ state: 'pending' }, s.pending)
      this.set({ state: 'queued' }, s.queued)
    }
  })

  // Catalog.
  new Gauge({
    name: name('catalog_info'),
    help: 'The loaded catalog: always 1, labelled with its version',
    labelNames: ['version'] as const,
    registers: [registry],
    collect () {
      if (sources === null) return
      this.reset()
      this.set({ version: sources.catalog().version }, 1)
    }
  })
  new Gauge({
    name: name('catalog_routes'),
    help: 'Routes in the loaded catalog',
    registers: [registry],
    collect () { this.set(sources?.catalog().routes ?? 0) }
  })
  const lastReloadSuccess = new Gauge({
    name: name('catalog_last_reload_success'),
    help: 'Whether the last catalog load or reload succeeded (1) or kept the previous catalog (0)',
    registers: [registry]
  })
  const lastReloadSuccessTime = new Gauge({
    name: name('catalog_last_reload_success_timestamp_seconds'),
    help: 'Unix time of the last successful catalog load or reload',
    registers: [registry]
  })
  const reloads = new Counter({
    name: name('catalog_reloads_total'),
    help: 'Catalog reloads by result',
    labelNames: ['result'] as const,
    registers: [registry]
  })
  reloads.inc({ result: 'success' }, 0)
  reloads.inc({ result: 'failure' }, 0)

  // Least-privilege usage recording (src/usage/).
  const usageRecorded = new Counter({ name: name('usage_records_total'), help: 'Allowed job-token requests recorded for the least-privilege report', registers: [registry] })
  const usageDropped = new Counter({ name: name('usage_dropped_total'), help: 'Usage records dropped (pending buffer full or per-project cap reached)', registers: [registry] })
  const usageWriteErrors = new Counter({ name: name('usage_write_errors_total'), help: 'Usage batches the store failed to write', registers: [registry] })
  const usageFlushes = new Counter({ name: name('usage_flushes_total'), help: 'Usage batches written to the store', registers: [registry] })

  // Log lines lost on stdout/stderr (src/logging.ts): process-wide, read at scrape time.
  new Counter({
    name: name('log_lines_dropped_total'),
    help: 'Log lines not written, by stream (stdout, stderr) and reason (write_error: the write failed, e.g. the reader went away; backlog: the reader is not keeping up)',
    labelNames: ['stream', 'reason'] as const,
    registers: [registry],
    collect () {
      const dropped = logLinesDropped()
      this.reset()
      for (const stream of LOG_STREAMS) for (const reason of DROP_REASONS) this.inc({ stream, reason }, dropped[stream][reason])
    }
  })

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
        const cls = o.upstreamStatus >= 100 && o.upstreamStatus < 600 ? `${Math.floor(o.upstreamStatus / 100)}xx` : 'other'
        upstreamResponses.inc(cls)
      }
    },
    observeInvalidation (lagMs) {
      invalidationLag.observe(lagMs / 1000)
    },
    catalogReloaded (ok) {
      reloads.inc({ result: ok ? 'success' : 'failure' })
      lastReloadSuccess.set(ok ? 1 : 0)
      if (ok) lastReloadSuccessTime.set(Date.now() / 1000)
    },
    usage: {
      recorded: n => usageRecorded.inc(n),
      dropped: n => usageDropped.inc(n),
      writeFailed: () => usageWriteErrors.inc(),
      flushed: () => usageFlushes.inc()
    },
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
