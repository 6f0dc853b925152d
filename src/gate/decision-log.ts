// The decision log: one JSON line per decided request, at a configurable level. An allowed or
// no-job-token decision that repeats one already written in the current window (the same
// decision, reason, job, accessed project, route, method and status) is not written again, and
// those decisions may also be sampled; denies, would_deny, deferred and errors are always
// written. The line names the stage that decided (pipeline.ts STAGES, or the listener's
// forward and forward_auth steps) and the route pattern, never the raw target: a query string can
// carry a token (job_token=, private_token=), so even with GATE_LOG_RAW_PATH only the canonical
// path is written. The method is written as given when it is one of HTTP's, else `[other]`
// (forward-auth reads it from a header the client fills). Nothing here ever sees a credential.

import { pino, type Level, type Logger } from 'pino'
import type { Exchange, Verdict } from './pipeline.ts'
import { loggedMethod, loggedPath } from '../text.ts'

export interface DecisionLogOptions {
  readonly level: string
  /** Share of sampled decisions written, 0 to 1. */
  readonly sampleRate: number
  /**
   * Length of the repeat window in ms: a sampled decision the same as one written since the
   * window began is not written. 0: every one is written.
   */
  readonly repeatWindowMs?: number
  /** Clock of the repeat window, ms, for timings without `at` (tests). Default performance.now. */
  readonly now?: () => number
  readonly rawPath: boolean
  /** [0, 1) source for sampling (tests). Default Math.random. */
  readonly random?: () => number
}

export interface DecisionTiming {
  /** Time in the gate before forwarding or answering, ms. */
  readonly decisionMs: number
  readonly totalMs: number
  readonly upstreamHeadersMs?: number
  /** performance.now() when the request was recorded, read by the repeat window; unset: read here. */
  readonly at?: number
}

const SAMPLED: ReadonlySet<Verdict> = new Set<Verdict>(['allow', 'no_job_token'])

/** Most distinct decisions remembered in one window; beyond, the window starts over (memory stays bounded). */
export const REPEAT_WINDOW_MAX_KEYS = 20_000

/**
 * Whether a decision repeats one written since the window began: the first of each in a window
 * answers false (and is remembered), the rest true. The window restarts every `windowMs`, so each
 * distinct decision that keeps happening is written once per window.
 *
 * Hot path: the decision's parts are looked up level by level in nested Maps (the route object,
 * the gate's own strings for verdict, reason and method, then numbers), keys whose hashes V8
 * keeps; a key string joined from them was a new string to build and hash on every request
 * (about 4 times the cost). The levels go from few values to many, so most Maps are shared.
 */
function repeatFilter (windowMs: number, started: number): (x: Exchange, status: number, t: number) => boolean {
  type Level = Map<unknown, Level | true>
  let seen: Level = new Map()
  let keys = 0
  let startedAt = started
  const NO_ROUTE = {}
  const child = (level: Level, key: unknown): Level => {
    let next = level.get(key) as Level | undefined
    if (next === undefined) level.set(key, next = new Map())
    return next
  }
  const restart = (t: number): void => {
    seen = new Map()
    keys = 0
    startedAt = t
  }
  return (x, status, t) => {
    if (t - startedAt >= windowMs) restart(t)
    const project = x.accessedProjectId ?? -1
    let last = lookup(seen, x, status)
    if (last.has(project)) return true
    if (keys >= REPEAT_WINDOW_MAX_KEYS) {
      restart(t)
      last = lookup(seen, x, status)
    }
    last.set(project, true)
    keys++
    return false
  }

  /** The innermost level of `x`'s decision (created as needed): accessed projects seen. */
  function lookup (root: Level, x: Exchange, status: number): Level {
    const byRoute = child(root, x.match?.route ?? NO_ROUTE)
    const byStatus = child(child(child(child(byRoute, x.verdict), x.reason), x.method), status)
    return child(byStatus, x.identity?.jobId ?? -1)
  }
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000

/** Writes (or samples away) the decision line of `x`. */
export type DecisionLog = (x: Exchange, requestId: string, status: number, timing: DecisionTiming) => void

export function createDecisionLog (logger: Logger, options: DecisionLogOptions): DecisionLog {
  const random = options.random ?? Math.random
  const level = options.level as Level
  const values = logger.levels.values
  // Errors are never quieter than warn.
  const errorLevel: Level = (values[level] ?? 0) >= (values.warn ?? 40) ? level : 'warn'
  const write = lineWriter(logger)
  const windowMs = options.repeatWindowMs ?? 0
  const now = options.now ?? (() => performance.now())
  const repeats = windowMs > 0 ? repeatFilter(windowMs, now()) : null
  return (x, requestId, status, timing) => {
    if (SAMPLED.has(x.verdict)) {
      // The recorder's own reading of the clock: no second one per request.
      if (repeats !== null && repeats(x, status, timing.at ?? now())) return
      if (options.sampleRate < 1 && !(random() < options.sampleRate)) return
    }
    const lineLevel = x.verdict === 'error' ? errorLevel : level
    if (write !== null) {
      if (logger.isLevelEnabled(lineLevel)) write(values[lineLevel]!, fieldsJson(x, requestId, status, timing, options.rawPath))
      return
    }
    logger[lineLevel]({
      request_id: requestId,
      method: loggedMethod(x.method),
      route_id: x.match?.route.id,
      route_pattern: x.match?.route.pattern,
      ...(options.rawPath && x.canonical !== null ? { path: loggedPath(x.canonical.path) } : {}),
      decision: x.verdict,
      reason: x.reason,
      stage: x.stage ?? undefined,
      upstream_error: x.upstreamError ?? undefined,
      store_error: x.storeError ?? undefined,
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

// Hot path: the decision line is written once per request. pino's generic path (a fields object,
// a loop over its keys, a type switch and an escape per value) was most of the line's cost; the
// fields here are known, so their JSON is built directly: the route's two fields once per route,
// numbers as they are, strings of the gate's own sets (verdicts, reasons, stages) unescaped. The
// line is what pino writes for the same fields, in the same order (test/observability/logs.test.ts
// compares them); the level prefix, time, bindings and stream are the logger's own.

const S = pino.symbols
const FIELDS = ['request_id', 'method', 'route_id', 'route_pattern', 'path', 'decision', 'reason', 'stage', 'upstream_error', 'store_error', 'missing_policies', 'job_id', 'job_project_id', 'accessed_project_id', 'status', 'duration_ms', 'decision_ms', 'upstream_headers_ms', 'msg']

type PinoInternals = Record<symbol, unknown> & { msgPrefix?: string }

/**
 * Writes `{<level>,<time>,<bindings><fields>,"msg":"decision"}` to the logger's stream, or null
 * when the logger has an option this does not reproduce (a mixin, a log formatter, hooks,
 * redaction, serializers of these fields, a nested key, another message key, a message prefix, a
 * stream that wants metadata): then every line goes through pino.
 */
function lineWriter (logger: Logger): ((levelValue: number, fields: string) => void) | null {
  const l = logger as unknown as PinoInternals
  const hooks = l[S.hooksSym] as { logMethod?: unknown, streamWrite?: unknown } | undefined
  const formatters = l[S.formattersSym] as { log?: unknown } | undefined
  const stringifiers = l[S.stringifiersSym] as Record<string | symbol, unknown> | undefined
  const serializers = l[S.serializersSym] as Record<string, unknown> | undefined
  const stream = l[S.streamSym] as ({ write: (line: string) => void } & Record<symbol, unknown>) | undefined
  const time = l[S.timeSym]
  if (stream === undefined || typeof stream.write !== 'function' || typeof time !== 'function') return null
  if (l[S.mixinSym] !== undefined && l[S.mixinSym] !== null) return null
  if (formatters?.log !== undefined || hooks?.logMethod !== undefined || hooks?.streamWrite !== undefined) return null
  if (stringifiers === undefined || Object.keys(stringifiers).length > 0 || stringifiers[S.wildcardFirstSym as symbol] !== undefined) return null
  if (serializers === undefined || FIELDS.some(f => serializers[f] !== undefined)) return null
  if (l[S.nestedKeySym] !== null && l[S.nestedKeySym] !== undefined) return null
  if (l[S.messageKeySym] !== 'msg' || typeof l.msgPrefix === 'string' || stream[S.needsMetadataGsym] === true) return null
  return (levelValue, fields) => {
    const prefix = (l[S.lsCacheSym] as Record<number, string>)[levelValue]!
    stream.write(prefix + (time as () => string).call(logger) + (l[S.chindingsSym] as string) + fields + ',"msg":"decision"' + (l[S.endSym] as string))
  }
}

/** `,"route_id":…,"route_pattern":…` of a route, built once. */
const routeFields = new WeakMap<object, string>()
const METHODS = new Map(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].map(m => [m, `"${m}"`]))

/**
 * `String(round(ms))` without a float's number-to-string (about 0.1 µs each, three per line): the
 * whole microseconds as an integer, printed as ms with the shortest fraction, which is the text
 * JavaScript prints for that multiple of 0.001. Anything else (negative, huge, not finite) goes
 * the generic way.
 */
function roundJson (ms: number): string {
  const us = Math.round(ms * 1000)
  if (!(us >= 0 && us <= 0x3fffffff)) return String(round(ms))
  const whole = (us / 1000) | 0
  const frac = us - whole * 1000
  if (frac === 0) return String(whole)
  if (frac % 100 === 0) return whole + '.' + (frac / 100)
  if (frac % 10 === 0) return whole + (frac < 100 ? '.0' : '.') + (frac / 10)
  return whole + (frac < 10 ? '.00' : frac < 100 ? '.0' : '.') + frac
}


function fieldsJson (x: Exchange, requestId: string, status: number, timing: DecisionTiming, rawPath: boolean): string {
  const route = x.match?.route
  let route$ = ''
  if (route !== undefined) {
    route$ = routeFields.get(route) ?? ''
    if (route$ === '') routeFields.set(route, route$ = ',"route_id":' + JSON.stringify(route.id) + ',"route_pattern":' + JSON.stringify(route.pattern))
  }
  const identity = x.identity
  // The verdict, reason and stage are the gate's own identifiers: no escaping needed.
  return ',"request_id":' + JSON.stringify(requestId) +
    ',"method":' + (METHODS.get(x.method) ?? JSON.stringify(loggedMethod(x.method))) +
    route$ +
    (rawPath && x.canonical !== null ? ',"path":' + JSON.stringify(loggedPath(x.canonical.path)) : '') +
    ',"decision":"' + x.verdict + '","reason":"' + x.reason + '"' +
    (x.stage === null ? '' : ',"stage":"' + x.stage + '"') +
    (x.upstreamError === null ? '' : ',"upstream_error":' + JSON.stringify(x.upstreamError)) +
    (x.storeError === null ? '' : ',"store_error":' + JSON.stringify(x.storeError)) +
    (x.missingPolicies.length > 0 ? ',"missing_policies":' + JSON.stringify(x.missingPolicies) : '') +
    (identity === null ? '' : ',"job_id":' + identity.jobId + ',"job_project_id":' + identity.jobProjectId) +
    (x.accessedProjectId === null ? '' : ',"accessed_project_id":' + x.accessedProjectId) +
    ',"status":' + status +
    ',"duration_ms":' + roundJson(timing.totalMs) +
    ',"decision_ms":' + roundJson(timing.decisionMs) +
    (timing.upstreamHeadersMs === undefined ? '' : ',"upstream_headers_ms":' + roundJson(timing.upstreamHeadersMs))
}
