// In-flight counting, draining and the turn of an unexpected failure into a 500. Every request
// of the proxy and forward-auth listeners is tracked, so close() can let them finish (up to the
// drain timeout) before the connections are cut.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import { GateError } from '../errors.ts'
import { BodyReadAborted } from '../read-body.ts'
import { LookupDropped } from '../waiters.ts'
import type { GateMetrics } from '../metrics.ts'
import { denyOf } from './pipeline.ts'
import { respond } from './respond.ts'

export interface Lifecycle {
  /** True once close() has begun: new requests are refused with GATE_SHUTTING_DOWN. */
  readonly draining: () => boolean
  readonly inFlight: () => number
  /**
   * Counts the request in flight until `work` settles. A rejection is answered with a 500
   * (a GateError: its code's status) carrying `requestId`, and logged with it.
   */
  track (req: IncomingMessage, res: ServerResponse, requestId: string, work: Promise<void>): void
  /** Starts draining; resolves when nothing is in flight or after drainMs, whichever comes first. */
  drain (drainMs: number): Promise<void>
}

export interface LifecycleOptions {
  /**
   * Resolves once `ms` have passed: the drain deadline. Default an unref'd timer, which never
   * holds the process open; tests pass one they fire by hand.
   */
  readonly after?: (ms: number) => Promise<void>
}

const unrefTimer = (ms: number): Promise<void> => new Promise(resolve => { setTimeout(resolve, ms).unref() })

export function createLifecycle (logger: Logger, metrics: GateMetrics, options: LifecycleOptions = {}): Lifecycle {
  const after = options.after ?? unrefTimer
  let inFlight = 0
  let draining = false
  const idle: Array<() => void> = []
  const done = (): void => {
    inFlight--
    if (inFlight === 0) for (const resolve of idle.splice(0)) resolve()
  }
  const fail = (req: IncomingMessage, res: ServerResponse, requestId: string, err: unknown): void => {
    if (err instanceof BodyReadAborted || err instanceof LookupDropped) {
      // The client went away while its body was read (to find a job token in it, or a GraphQL or
      // configuration API body), or while GitLab was asked about it (its lookups given up):
      // nobody to answer, and nothing of the gate's failed.
      logger.info({ request_id: requestId, method: req.method, decision: 'error', reason: 'CLIENT_ABORTED' }, err instanceof LookupDropped ? 'client gone while GitLab was asked about its request' : 'client gone while its body was read')
      metrics.observeRequest({ decision: 'error', reason: 'CLIENT_ABORTED', resource: undefined, method: req.method ?? 'GET', decisionSeconds: 0, totalSeconds: 0 })
      res.destroy()
      return
    }
    // A GateError names its own code; anything else is the gate's fault.
    const code = err instanceof GateError ? err.code : 'GATE_INTERNAL_ERROR'
    logger.error({ request_id: requestId, code, err: { message: (err as Error).message, stack: (err as Error).stack } }, 'unexpected error')
    metrics.observeRequest({ decision: 'error', reason: code, resource: undefined, method: req.method ?? 'GET', decisionSeconds: 0, totalSeconds: 0 })
    respond(res, requestId, err instanceof GateError ? denyOf(code, { message: err.publicMessage }) : code, true)
  }
  return {
    draining: () => draining,
    inFlight: () => inFlight,
    // Hot path: once per request. One then() with the shared `done`: catch().finally() made two
    // more promises, finally()'s own closures and two more microtask hops per request.
    track (req, res, requestId, work) {
      inFlight++
      work.then(done, (err: unknown) => {
        try {
          fail(req, res, requestId, err)
        } finally {
          done()
        }
      })
    },
    async drain (drainMs) {
      draining = true
      if (inFlight === 0) return
      await Promise.race([new Promise<void>(resolve => idle.push(resolve)), after(drainMs)])
      if (inFlight > 0) logger.warn({ drain_ms: drainMs, in_flight: inFlight }, 'drain timeout: closing the connections of requests still in flight')
    }
  }
}
