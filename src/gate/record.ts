// What happens once per decided request, after its answer: the metrics, the decision log line
// and the usage record of an allowed job-token request. Shared by the proxy and forward-auth.

import type { GateMetrics } from '../metrics.ts'
import type { Reason } from '../errors.ts'
import type { UsageRecorder } from '../usage/recorder.ts'
import { NO_POLICY } from '../usage/types.ts'
import type { DecisionLog } from './decision-log.ts'
import type { Exchange } from './pipeline.ts'

/**
 * Allow reasons that went through an allowlist entry, or that the allowlist will have to allow
 * once enforced: what the least-privilege report counts. FINE_GRAINED_POLICIES_OFF too: the
 * report is read before the policies are turned on, and what those requests used is what the
 * entry will need then. INBOUND_DISABLED likewise before the inbound scope is turned on (GitLab
 * logs these accesses for that, Ci::JobToken::Authorization): the report lists their job
 * projects under the entry that would let them in, or `unmatched`.
 */
const USAGE_REASONS: ReadonlySet<Reason> = new Set<Reason>(['DEFAULT_PERMISSIONS', 'FINE_GRAINED_POLICIES_OFF', 'POLICIES_GRANTED', 'SKIP_POLICIES', 'INBOUND_DISABLED'])
const NO_POLICIES: readonly string[] = Object.freeze([])
/** A route that declares no policies and does not skip them: no fine-grained entry allows it. */
const WITHOUT_POLICIES: readonly string[] = Object.freeze([NO_POLICY])
/**
 * Records the decision of `x` (its verdict, reason and stage): `started` and `decidedAt` are
 * performance.now() readings; `upstreamHeadersMs` only when the upstream answered.
 */
export type RecordDecision = (x: Exchange, requestId: string, started: number, status: number, decidedAt?: number, upstreamHeadersMs?: number) => void

export function createDecisionRecorder (metrics: GateMetrics, log: DecisionLog, usage: UsageRecorder): RecordDecision {
  // Hot path: once per request, off the answer's path: one observation and one timing object, of
  // fixed shapes (an absent upstream time is undefined, not a missing key).
  return (x, requestId, started, status, decidedAt, upstreamHeadersMs) => {
    const now = performance.now()
    const decisionMs = (decidedAt ?? now) - started
    const totalMs = now - started
    const upstream = upstreamHeadersMs !== undefined
    metrics.observeRequest({
      decision: x.verdict,
      reason: x.reason,
      resource: x.match?.route.resource,
      method: x.method,
      decisionSeconds: decisionMs / 1000,
      totalSeconds: totalMs / 1000,
      upstreamHeadersSeconds: upstream ? upstreamHeadersMs / 1000 : undefined,
      upstreamStatus: upstream ? status : undefined
    })
    log(x, requestId, status, { decisionMs, totalMs, upstreamHeadersMs, at: now })
    const identity = x.identity
    // Only what GitLab carried out (an answer below 400): a request it refused (403) or found
    // nothing for (404) used no policy, and counting it would let a job keep any policy of a
    // default-permissions entry in the report's suggestion. Forward-auth never sees GitLab's
    // answer: its 200 is the gate's own.
    if (x.verdict === 'allow' && status < 400 && identity !== null && x.match !== null && x.accessedProjectId !== null && x.accessedProjectId !== identity.jobProjectId && USAGE_REASONS.has(x.reason) && x.match.route.readsNoProject !== true) {
      const route = x.match.route
      usage.record(x.accessedProjectId, identity, route.skipPolicies ? NO_POLICIES : route.policies.length === 0 ? WITHOUT_POLICIES : route.policies)
    }
  }
}
