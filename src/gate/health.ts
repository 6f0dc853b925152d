// The health listener: liveness, readiness (catalog, store, upstream, draining) and the
// Prometheus `/metrics` scrape. Kept off the API listener so probes and scrapes never queue
// behind API traffic, and never reach GitLab.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { StoreHealth } from '../grants/store.ts'
import type { GateMetrics } from '../metrics.ts'
import { newRequestId } from './request.ts'
import { respond, type JsonAnswer } from './respond.ts'
import { createTurns } from './turns.ts'

export interface HealthSources {
  readonly metrics: GateMetrics
  readonly logger: Logger
  readonly store: () => Promise<StoreHealth>
  readonly catalog: () => { readonly version: string, readonly routes: number }
  readonly upstreamUsable: () => boolean
  readonly draining: () => boolean
}

const json = (status: number, body: unknown): JsonAnswer => ({ kind: 'json', status, body })
const LIVE = json(200, { status: 'ok' })
const NOT_FOUND = json(404, { message: '404 Not Found' })
/**
 * The longest silence, either direction, on a health connection: a probe or a scrape is answered
 * in milliseconds. Without it, a connection that sent nothing, or stopped reading an answer (a
 * `/metrics` larger than the socket's buffers), was held for good (the listener's bound closes
 * such connections only to make room: src/gate/connections.ts).
 */
export const HEALTH_IDLE_TIMEOUT_MS = 30_000

export function createHealthServer (sources: HealthSources): Server {
  const { metrics, logger } = sources

  async function readiness (): Promise<JsonAnswer> {
    const store = await sources.store().catch((err: unknown) => ({ ok: false, detail: (err as Error).message }))
    const draining = sources.draining()
    const upstream = sources.upstreamUsable()
    const checks = { catalog: { ok: true, ...sources.catalog() }, store, upstream: { ok: upstream }, draining }
    // A store whose invalidations are not received (its subscription refused or lost) is not
    // ready either: the replica would learn of a grant removed elsewhere only by reading it again.
    const ok = store.ok && 'subscribed' in store && store.subscribed && upstream && !draining
    return json(ok ? 200 : 503, { status: ok ? 'ok' : 'failed', checks })
  }

  // Pipelined probes and scrapes one at a time too: a write of thousands of `/metrics` requests
  // rendered the registry for each at once.
  const turnOf = createTurns(logger)
  return createServer((req, res) => {
    const turn = turnOf(req, res)
    if (turn === true) answer(req, res)
    else if (turn !== false) void turn.then(started => { if (started) answer(req, res) })
  }).setTimeout(HEALTH_IDLE_TIMEOUT_MS)

  function answer (req: IncomingMessage, res: ServerResponse): void {
    if (req.url === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      // Prometheus' text format, not JSON: written here.
      metrics.scrape().then(text => {
        res.writeHead(200, { 'content-type': metrics.contentType })
        res.end(text)
      }, (err: unknown) => {
        // A failure is answered as every 500 is: JSON with an id that finds its log line.
        const requestId = newRequestId()
        logger.error({ err: { message: (err as Error).message }, request_id: requestId }, 'metrics scrape failed')
        respond(res, requestId, 'GATE_INTERNAL_ERROR')
      })
      return
    }
    if (req.url === '/-/liveness') {
      respond(res, null, LIVE)
      return
    }
    if (req.url === '/-/readiness') {
      void readiness().then(answer => { respond(res, null, answer) })
      return
    }
    respond(res, null, NOT_FOUND)
  }
}
