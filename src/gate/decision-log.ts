// The decision log: one JSON line per decided request, at a configurable level and sample rate.
// Allowed and no-job-token requests may be sampled; denies, would_deny, deferred and errors are
// always written. The line names the stage that decided (pipeline.ts STAGES, or the listener's
// forward and forward_auth steps) and the route pattern, never the raw target: a query string can
// carry a token (job_token=, private_token=), so even with GATE_LOG_RAW_PATH only the canonical
// path is written. Nothing here ever sees a credential.

import type { Level, Logger } from 'pino'
import type { Exchange, Verdict } from './pipeline.ts'

export interface DecisionLogOptions {
  readonly level: string
  /** Share of sampled decisions written, 0 to 1. */
  readonly sampleRate: number
  readonly rawPath: boolean
  /** [0, 1) source for sampling (tests). Default Math.random. */
  readonly random?: () => number
}

export interface DecisionTiming {
  /** Time in the gate before forwarding or answering, ms. */
  readonly decisionMs: number
  readonly totalMs: number
  readonly upstreamHeadersMs?: number
}

const SAMPLED: ReadonlySet<Verdict> = new Set<Verdict>(['allow', 'no_job_token'])
const round = (ms: number): number => Math.round(ms * 1000) / 1000

/** Writes (or samples away) the decision line of `x`. */
export type DecisionLog = (x: Exchange, requestId: string, status: number, timing: DecisionTiming) => void

export function createDecisionLog (logger: Logger, options: DecisionLogOptions): DecisionLog {
  const random = options.random ?? Math.random
  const level = options.level as Level
  const values = logger.levels.values
  // Errors are never quieter than warn.
  const errorLevel: Level = (values[level] ?? 0) >= (values.warn ?? 40) ? level : 'warn'
  return (x, requestId, status, timing) => {
    if (SAMPLED.has(x.verdict) && options.sampleRate < 1 && !(random() < options.sampleRate)) return
    logger[x.verdict === 'error' ? errorLevel : level]({
      request_id: requestId,
      method: x.method,
      route_id: x.match?.route.id,
      route_pattern: x.match?.route.pattern,
      ...(options.rawPath && x.canonical !== null ? { path: x.canonical.path } : {}),
      decision: x.verdict,
      reason: x.reason,
      stage: x.stage ?? undefined,
      missing_policies: x.missingPolicies.length > 0 ? x.missingPolicies : undefined,
      job_id: x.identity?.jobId,
      job_project_id: x.identity?.jobProjectId,
      accessed_project_id: x.accessedProjectId ?? undefined,
      status,
      duration_ms: round(timing.totalMs),
      decision_ms: round(timing.decisionMs),
      upstream_headers_ms: timing.upstreamHeadersMs === undefined ? undefined : round(timing.upstreamHeadersMs)
    }, 'decision')
  }
}
