// The scrape-time collectors of src/metrics.ts, one function per source: the grants cache and
// store, identity, the GitLab client, the upstream pool, the catalog, usage recording, logging,
// client connections. Each reads numbers its source already keeps, when Prometheus scrapes, so the
// request path pays nothing for them (the counters of events, such as refusals, aside).
// A reader returns undefined while the gate is not attached yet: the series keep their values.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { GrantCacheStats } from '../grants/cache.ts'
import type { StoreHealth } from '../grants/store.ts'
import type { IdentityStats } from '../identity/types.ts'
import type { ProjectFinderStats } from '../projects/finder.ts'
import { DROP_REASONS, LOG_STREAMS, logLinesDropped } from '../logging.ts'

/** Where a group of collectors registers, and a metric's full name (with the gate's prefix). */
export interface Scope {
  readonly registry: Registry
  readonly name: (metric: string) => string
}

type Rows = Iterable<readonly [Record<string, string>, number]>

/** A counter set at scrape time to what `read` returns (all its series replaced). */
function scrapedCounter (scope: Scope, metric: string, help: string, labelNames: readonly string[], read: () => Rows | undefined): void {
  new Counter({
    name: scope.name(metric),
    help,
    labelNames,
    registers: [scope.registry],
    collect () {
      const rows = read()
      if (rows === undefined) return
      this.reset()
      for (const [labels, n] of rows) this.inc(labels, n)
    }
  })
}

/** Grants cache (counters kept by src/grants/cache.ts, per replica) and store health. */
export function grantMetrics (scope: Scope, read: { stats: () => GrantCacheStats | undefined, health: () => Promise<StoreHealth> | undefined }): { invalidationLag: Histogram } {
  const { registry, name } = scope
  const stat = (metric: string, key: keyof GrantCacheStats, help: string): void => {
    scrapedCounter(scope, metric, help, [], () => {
      const s = read.stats()
      return s === undefined ? undefined : [[{}, Math.max(0, s[key])]]
    })
  }
  stat('grant_cache_hits_total', 'hits', 'Grant cache lookups answered from memory (negative entries included)')
  stat('grant_cache_negative_hits_total', 'negativeHits', 'Grant cache hits on "unknown project/path" entries')
  stat('grant_cache_misses_total', 'misses', 'Grant cache lookups that went to the store or joined a load')
  stat('grant_cache_stale_served_total', 'staleServed', 'Entries served past their TTL because the store failed')
  stat('grant_cache_single_flight_waits_total', 'singleFlightWaits', 'Misses that joined a store read already in flight')
  stat('grant_cache_fail_closed_total', 'failClosed', 'Lookups refused (503) because the store failed and no usable entry was cached')
  stat('grant_store_errors_total', 'storeErrors', 'Store reads that failed or timed out')
  stat('grant_store_resets_total', 'resets', 'Invalidation subscription re-established (cache flushed: messages may have been missed)')
  stat('grant_store_subscription_losses_total', 'subscriptionLosses', 'Invalidation subscription lost (decisions read the store, and readiness fails, until it is back)')
  stat('grant_invalidations_total', 'invalidationsReceived', 'Invalidation messages received')
  new Gauge({
    name: name('grant_cache_entries'),
    help: 'Entries in the grant cache by kind',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect () {
      const s = read.stats()
      if (s === undefined) return
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
      const health = read.health()
      if (health === undefined) return
      const h = await health
      this.reset()
      this.set({ kind: h.kind }, h.ok ? 1 : 0)
    }
  })
  new Gauge({
    name: name('grant_store_subscribed'),
    help: 'Whether invalidations are being received right now (1) or not (0)',
    registers: [registry],
    async collect () {
      const health = read.health()
      if (health === undefined) return
      const h = await health
      this.set(h.subscribed ? 1 : 0)
    }
  })
  return { invalidationLag }
}

/** Identity: kept by the resolver (src/identity/resolver.ts). */
export function identityMetrics (scope: Scope, stats: () => IdentityStats | undefined): void {
  scrapedCounter(scope, 'identity_cache_lookups_total', 'Job token cache lookups by result (hit, negative_hit: a remembered rejection, miss, single_flight_wait)', ['result'], () => {
    const c = stats()?.tokenCache
    return c === undefined
      ? undefined
      : [[{ result: 'hit' }, c.hits], [{ result: 'negative_hit' }, c.negativeHits], [{ result: 'miss' }, c.misses], [{ result: 'single_flight_wait' }, c.singleFlightWaits]]
  })
  scrapedCounter(scope, 'jwks_refreshes_total', 'JWKS fetches by result (success: a new key set, failure: kept the last good keys or none)', ['result'], () => {
    const s = stats()
    return s === undefined ? undefined : [[{ result: 'success' }, s.jwksRefreshes], [{ result: 'failure' }, s.jwksFailures]]
  })
}

/**
 * Every call of the gate's GitLab client (src/gitlab/client.ts), whoever made it: identity's
 * (`job`, `project`, `group`), the configuration API's and role checks' (`project_access`,
 * `group_by_path`, `user`), and any later caller's. Endpoint names are constants in the code,
 * outcomes a fixed set: the labels stay bounded.
 */
export function gitlabMetrics (scope: Scope, stats: () => Readonly<Record<string, number>> | undefined): void {
  scrapedCounter(scope, 'gitlab_requests_total', "Calls to GitLab's API made by the gate itself (not forwarded traffic), by endpoint (job, project, group: job token introspection; project_access, group_by_path, user: the configuration API and role checks; project_lookup, package_lookup, group_projects, npm_metadata, pipeline_jobs, registry_upstreams: the project of group and instance routes; token_self, token_by_id, oauth_token_info: a token's own scopes, graphql_target_project, graphql_target_group, graphql_target_namespace: what a GraphQL request touches) and outcome (ok, rejected: the caller's credential was refused, failed: another answer, unavailable: no answer, 429 or 5xx, cancelled: given up, every client waiting for it gone)", ['endpoint', 'outcome'], () => {
    const s = stats()
    if (s === undefined) return undefined
    return Object.entries(s).map(([key, n]) => {
      const at = key.lastIndexOf(':')
      return [{ endpoint: key.slice(0, at), outcome: key.slice(at + 1) }, n] as const
    })
  })
}

export interface PoolStats { connected: number, free: number, pending: number, queued: number, running: number, size: number }

/** The upstream pool (undici Pool.stats). */
export function upstreamPoolMetrics (scope: Scope, stats: () => PoolStats | undefined): void {
  const { registry, name } = scope
  new Gauge({
    name: name('upstream_pool_connections'),
    help: 'Upstream pool connections by state (connected, free) and the pool size',
    labelNames: ['state'] as const,
    registers: [registry],
    collect () {
      const s = stats()
      if (s === undefined) return
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
      const s = stats()
      if (s === undefined) return
      this.set({ state: 'running' }, s.running)
      this.set({ state: 'pending' }, s.pending)
      this.set({ state: 'queued' }, s.queued)
    }
  })
}

/**
 * The slots of the project finder's costly GitLab reads (src/projects/slots.ts), by queue: npm
 * metadata, Maven package listings and groups' project listings. Queue names are constants: the
 * labels stay bounded.
 */
export function projectLookupMetrics (scope: Scope, stats: () => ProjectFinderStats['slots'] | undefined): void {
  const { registry, name } = scope
  new Gauge({
    name: name('project_lookups'),
    help: 'Lookups of group and instance routes\' projects in the slots of their costly GitLab reads, by queue (npm_metadata, maven_listings, group_listings) and state (running, waiting)',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    collect () {
      const s = stats()
      if (s === undefined) return
      for (const [queue, slots] of Object.entries(s)) {
        this.set({ queue, state: 'running' }, slots.running)
        this.set({ queue, state: 'waiting' }, slots.waiting)
      }
    }
  })
  scrapedCounter(scope, 'project_lookups_dropped_total', 'Lookups dropped before they started, by queue (npm_metadata, maven_listings, group_listings): every request waiting for them had gone (their clients went away)', ['queue'], () => {
    const s = stats()
    return s === undefined ? undefined : Object.entries(s).map(([queue, slots]) => [{ queue }, slots.dropped] as const)
  })
}

/** The loaded catalog, and the outcome of loads and SIGHUP reloads. */
export function catalogMetrics (scope: Scope, catalog: () => { version: string, routes: number } | undefined): { reloaded (ok: boolean): void } {
  const { registry, name } = scope
  new Gauge({
    name: name('catalog_info'),
    help: 'The loaded catalog: always 1, labelled with its version',
    labelNames: ['version'] as const,
    registers: [registry],
    collect () {
      const c = catalog()
      if (c === undefined) return
      this.reset()
      this.set({ version: c.version }, 1)
    }
  })
  new Gauge({
    name: name('catalog_routes'),
    help: 'Routes in the loaded catalog',
    registers: [registry],
    collect () { this.set(catalog()?.routes ?? 0) }
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
  return {
    reloaded (ok) {
      reloads.inc({ result: ok ? 'success' : 'failure' })
      lastReloadSuccess.set(ok ? 1 : 0)
      if (ok) lastReloadSuccessTime.set(Date.now() / 1000)
    }
  }
}

/** Least-privilege usage recording (src/usage/recorder.ts calls these). */
export function usageMetrics (scope: Scope): { recorded (n: number): void, dropped (n: number): void, writeFailed (): void, flushed (): void } {
  const { registry, name } = scope
  const usageRecorded = new Counter({ name: name('usage_records_total'), help: 'Allowed job-token requests recorded for the least-privilege report', registers: [registry] })
  const usageDropped = new Counter({ name: name('usage_dropped_total'), help: 'Usage records dropped (pending buffer full or per-project cap reached)', registers: [registry] })
  const usageWriteErrors = new Counter({ name: name('usage_write_errors_total'), help: 'Usage batches the store failed to write', registers: [registry] })
  const usageFlushes = new Counter({ name: name('usage_flushes_total'), help: 'Usage batches written to the store', registers: [registry] })
  return {
    recorded: n => usageRecorded.inc(n),
    dropped: n => usageDropped.inc(n),
    writeFailed: () => usageWriteErrors.inc(),
    flushed: () => usageFlushes.inc()
  }
}

/** Log lines lost on stdout/stderr (src/logging.ts): process-wide. */
export function loggingMetrics (scope: Scope): void {
  scrapedCounter(scope, 'log_lines_dropped_total', 'Log lines not written, by stream (stdout, stderr) and reason (write_error: the write failed, e.g. the reader went away; backlog: the reader is not keeping up)', ['stream', 'reason'], () => {
    const dropped = logLinesDropped()
    return LOG_STREAMS.flatMap(stream => DROP_REASONS.map(reason => [{ stream, reason }, dropped[stream][reason]] as const))
  })
}

/** Decisions on GraphQL requests of fine-grained personal access tokens (src/graphql/enforce.ts). */
export interface GraphqlDecisionMetrics {
  /**
   * decision: allow, deny, would_deny, error; reason: an errors-table code or GRAPHQL_PERMISSIONS_GRANTED;
   * permission: a catalog permission, `none` or `not_in_catalog` (enforce.ts keeps it to those).
   */
  decided (decision: string, reason: string, permission: string): void
}

export function graphqlMetrics (scope: Scope): GraphqlDecisionMetrics {
  const decisions = new Counter({
    name: scope.name('graphql_decisions_total'),
    help: 'GraphQL requests of fine-grained personal access tokens by decision (allow, deny, would_deny: shadow mode, error: GitLab could not be asked), reason code and the catalog permission refused (none, not_in_catalog)',
    labelNames: ['decision', 'reason', 'permission'] as const,
    registers: [scope.registry]
  })
  return {
    decided: (decision, reason, permission) => { decisions.inc({ decision, reason, permission }) }
  }
}

/** The configuration API's refusals (src/admin/handler.ts), by errors-table code. */
export interface AdminRefusalMetrics {
  refused (code: string): void
}

export function adminMetrics (scope: Scope): AdminRefusalMetrics {
  const refusals = new Counter({
    name: scope.name('admin_refusals_total'),
    help: 'Requests the configuration API refused (its REST endpoints, the token registry, GraphQL requests it answers), by errors-table code',
    labelNames: ['code'] as const,
    registers: [scope.registry]
  })
  return { refused: (code) => { refusals.inc({ code }) } }
}

/** The listeners whose client connections are limited and counted (src/gate/connections.ts). */
export const LISTENERS = ['api', 'auth', 'health'] as const
export type Listener = typeof LISTENERS[number]
/** max_connections: over the listener's limit; accept_error: the kernel refused the accept (EMFILE, ENFILE, ...). */
export const CONNECTION_DROP_REASONS = ['max_connections', 'accept_error'] as const
export type ConnectionDropReason = typeof CONNECTION_DROP_REASONS[number]

/** Client connections of the listeners: those open, each listener's limit, and those closed unserved. */
export interface ConnectionMetrics {
  /** Reads the listener's open connections and limit (null: none) at scrape time. */
  watch (listener: Listener, open: () => Promise<number>, max: number | null): void
  dropped (listener: Listener, reason: ConnectionDropReason): void
  /** A connection waiting for a request closed at the listener's limit to make room for a new one. */
  idleClosed (listener: Listener): void
}

export function connectionMetrics (scope: Scope): ConnectionMetrics {
  const watched = new Map<Listener, { open: () => Promise<number>, max: number | null }>()
  new Gauge({
    name: scope.name('client_connections'),
    help: 'Client connections of each listener (api, auth, health): open, and max (its limit, GATE_MAX_CONNECTIONS or the one derived from the open files limit; absent: none)',
    labelNames: ['listener', 'state'] as const,
    registers: [scope.registry],
    async collect () {
      this.reset()
      for (const [listener, w] of watched) {
        this.set({ listener, state: 'open' }, await w.open())
        if (w.max !== null) this.set({ listener, state: 'max' }, w.max)
      }
    }
  })
  const dropped = new Counter({
    name: scope.name('client_connections_dropped_total'),
    help: 'Client connections closed unserved, by listener and reason (max_connections: over the listener\'s limit with every connection busy, closed as it arrived; on health, its oldest connection not being answered closed instead; accept_error: the connection could not be accepted, e.g. EMFILE: no file descriptor left)',
    labelNames: ['listener', 'reason'] as const,
    registers: [scope.registry]
  })
  const idleClosed = new Counter({
    name: scope.name('client_connections_idle_closed_total'),
    help: 'Client connections waiting for a request (none sent yet, or idle between keep-alive requests) closed at the listener\'s limit to make room for a new one, the longest waiting first (api, auth)',
    labelNames: ['listener'] as const,
    registers: [scope.registry]
  })
  return {
    watch (listener, open, max) {
      watched.set(listener, { open, max })
      for (const reason of CONNECTION_DROP_REASONS) dropped.inc({ listener, reason }, 0)
      if (listener !== 'health') idleClosed.inc({ listener }, 0)
    },
    dropped: (listener, reason) => { dropped.inc({ listener, reason }) },
    idleClosed: listener => { idleClosed.inc({ listener }) }
  }
}
