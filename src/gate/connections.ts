// Client connections of the listeners, bounded below the process's open files limit. Every client
// connection holds a descriptor, and so does each connection the gate opens for it (the upstream,
// GitLab's API, Redis). With no bound, a client that opens connections and keeps them open used
// every descriptor: libuv then accepts each new connection and closes it at once (its reserve
// descriptor trick), unseen by Node, so the health listener stopped answering probes, requests on
// open connections failed for want of an upstream connection, and nothing was logged or counted.
// Past the limit, as nginx does, a connection waiting for a request (none sent yet, or idle
// between keep-alive requests) is closed to make room for the new one, the longest waiting first;
// only when every connection is busy is the new one closed: counted, logged at most once a window,
// while descriptors remain for the rest. The health listener closes its oldest idle or stalled
// connection instead, so that probes get in.

import { readFileSync } from 'node:fs'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { GateMetrics } from '../metrics.ts'
import type { Listener } from '../metrics/collectors.ts'

/** Descriptors left to the process itself: listeners, event loop, pipes, Redis, files, the health listener's connections. */
export const FD_RESERVE = 128
/**
 * Descriptors a client connection may hold: its own, one to the upstream and one to GitLab. Its
 * request uses one of the last two at a time, but both pools keep a connection open after a call
 * for the next (the upstream's for up to 30 s, GitLab's for a few seconds): connections that each
 * had a request forwarded and then one that asks GitLab hold three descriptors each.
 */
export const FDS_PER_CONNECTION = 3
/**
 * The health listener's bound: probes and scrapes open a few connections at a time. Kept by
 * closing the oldest idle or stalled connection when one more comes (keepOpenForProbes).
 */
export const HEALTH_MAX_CONNECTIONS = 32
/** At most one log line per listener and kind of drop in this window, with the count since the last. */
export const DROP_LOG_WINDOW_MS = 10_000
/**
 * Accept errors in one turn of the event loop past which accepting has failed for good: libuv
 * retries the accept as long as the error lasts, without returning to the event loop, so nothing
 * the gate could close frees a descriptor meanwhile.
 */
export const ACCEPT_ERRORS_PER_TURN = 1000

/** The soft limit on open files from /proc/self/limits; null where there is none to read, or it is unlimited. */
export function openFilesSoftLimit (read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | null {
  let text: string
  try {
    text = read()
  } catch {
    return null
  }
  const soft = /^Max open files\s+(\d+|unlimited)\s/m.exec(text)?.[1]
  return soft === undefined || soft === 'unlimited' ? null : Number(soft)
}

export interface ConnectionLimit {
  /** Per listener (API, forward-auth); null: none. */
  readonly max: number | null
  /** setting: GATE_MAX_CONNECTIONS; fd_limit: derived from the open files limit; none. */
  readonly source: 'setting' | 'fd_limit' | 'none'
}

/** GATE_MAX_CONNECTIONS (0: none), else the share of the open files soft limit of each of `listeners`. */
export function connectionLimitOf (setting: number | undefined, softLimit: number | null, listeners: number): ConnectionLimit {
  if (setting !== undefined) return setting === 0 ? { max: null, source: 'none' } : { max: setting, source: 'setting' }
  if (softLimit === null) return { max: null, source: 'none' }
  return { max: Math.max(1, Math.floor((softLimit - FD_RESERVE) / FDS_PER_CONNECTION / listeners)), source: 'fd_limit' }
}

export interface ClientConnections {
  /** Stops the pending log lines' timers (their counts stay in the metric). */
  close (): void
}

/**
 * Bounds the client connections of the API and forward-auth listeners to GATE_MAX_CONNECTIONS (or
 * the derived limit) and the health listener's to HEALTH_MAX_CONNECTIONS, and counts and logs the
 * connections closed unserved: over a limit, or refused by accept() (EMFILE and the like).
 */
export function limitClientConnections (servers: { api: Server, auth: Server | null, health: Server }, setting: number | undefined, logger: Logger, metrics: GateMetrics, softLimit: number | null = openFilesSoftLimit()): ClientConnections {
  const limit = connectionLimitOf(setting, softLimit, servers.auth === null ? 1 : 2)
  const fields = { max_connections: limit.max, source: limit.source, open_files_limit: softLimit, health_max_connections: HEALTH_MAX_CONNECTIONS }
  if (limit.source === 'setting' && softLimit !== null && FD_RESERVE + limit.max! * FDS_PER_CONNECTION * (servers.auth === null ? 1 : 2) > softLimit) {
    logger.warn(fields, 'GATE_MAX_CONNECTIONS is more than the open files limit leaves room for: past the limit new connections are closed unseen, the health listener\'s too; raise the limit (ulimit -n) or lower the setting')
  } else {
    logger.info(fields, 'client connection limit')
  }
  const timers: Array<() => void> = []
  const watch = (server: Server, listener: Listener, max: number | null): void => {
    metrics.connections.watch(listener, () => new Promise(resolve => { server.getConnections((_err, n) => { resolve(n ?? 0) }) }), max)
    const drops = windowedLog(count => {
      logger.warn({ listener, max_connections: max, dropped: count, window_ms: DROP_LOG_WINDOW_MS }, 'client connection limit reached: new connections closed')
    })
    const dropped = (): void => {
      metrics.connections.dropped(listener, 'max_connections')
      drops.add()
    }
    if (listener === 'health') {
      keepOpenForProbes(server, max!, dropped)
    } else if (max !== null) {
      const idleClosed = windowedLog(count => {
        logger.warn({ listener, max_connections: max, closed: count, window_ms: DROP_LOG_WINDOW_MS }, 'client connection limit reached: connections waiting for a request closed for new ones')
      })
      makeRoomForNew(server, max, dropped, () => {
        metrics.connections.idleClosed(listener)
        idleClosed.add()
      })
      timers.push(idleClosed.close)
    }
    const acceptErrors = windowedLog((count, code) => {
      logger.error({ listener, code, dropped: count, window_ms: DROP_LOG_WINDOW_MS }, 'client connections cannot be accepted: closed unserved')
    })
    let inTurn = 0
    server.on('error', (err: NodeJS.ErrnoException) => {
      // A listen error is listen()'s to report (it has its own listener then); any other but
      // accept's keeps Node's default: the process ends.
      if (err.syscall !== 'accept') {
        if (server.listenerCount('error') === 1) throw err
        return
      }
      metrics.connections.dropped(listener, 'accept_error')
      acceptErrors.add(err.code)
      if (inTurn++ === 0) setImmediate(() => { inTurn = 0 })
      if (inTurn > ACCEPT_ERRORS_PER_TURN) {
        logger.fatal({ listener, code: err.code, errors: inTurn }, 'client connections cannot be accepted and accept() keeps failing: exiting')
        throw err
      }
    })
    timers.push(drops.close, acceptErrors.close)
  }
  watch(servers.api, 'api', limit.max)
  if (servers.auth !== null) watch(servers.auth, 'auth', limit.max)
  watch(servers.health, 'health', HEALTH_MAX_CONNECTIONS)
  return { close: () => { for (const stop of timers) stop() } }
}

/**
 * The API and forward-auth listeners past `max` connections close the one that has waited longest
 * for a request (waitsForRequest: none sent yet, or idle since its last answer went), as nginx
 * reuses its idle connections when worker_connections run out, or the new one when every one is
 * busy. With Node's maxConnections instead, every new connection was closed as it came while
 * `max` connections sat idle between keep-alive requests (up to GATE_CLIENT_KEEPALIVE_TIMEOUT_MS
 * each, and for good where their clients asked again within it) or silent after connecting (up
 * to the headers timeout).
 *
 * `waiting` holds the connections in the order they began waiting: from their first turn of the
 * event loop, then from each answer after which nothing more was owed. One found busy leaves it
 * and comes back when its answers have gone, so each is passed over at most once a wait: a flood
 * at the limit with every connection busy costs a look at each once, not once per new connection.
 *
 * Slow senders are busy from their first byte, as with nginx (its client_header_timeout bounds
 * them): Node's headers timeout ends them, min(60 s, GATE_CLIENT_TIMEOUT_MS) after the first byte
 * of a request (after the accept for a connection's first), checked every 30 s
 * (connectionsCheckingInterval).
 */
function makeRoomForNew (server: Server, max: number, dropped: () => void, closedIdle: () => void): void {
  const open = new Set<Socket>()
  const waiting = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    open.add(socket)
    socket.once('close', () => {
      open.delete(socket)
      waiting.delete(socket)
    })
    // Waiting only once the event loop had a turn to read it: a client's request sent as it
    // connects (the norm) is read in the poll phase after the one that accepted its connection,
    // and until then nothing tells it from one that sends nothing. Taken as waiting at once, in a
    // burst of connections past the limit each new one closed one accepted just before it, its
    // request unread, rather than being closed itself. (The first turn ends with the poll phase
    // that accepted it, the second with the next.)
    setImmediate(() => {
      setImmediate(() => {
        if (open.has(socket) && !waiting.has(socket) && waitsForRequest(socket)) waiting.add(socket)
      })
    })
    if (open.size <= max) return
    for (const other of waiting) {
      waiting.delete(other)
      if (waitsForRequest(other)) {
        open.delete(other)
        other.destroy()
        closedIdle()
        return
      }
    }
    open.delete(socket)
    socket.destroy()
    dropped()
  })
  // After each answer: a connection that owes nothing more waits again, from now (a Set keeps
  // the order things were added in). Added here, the listener runs after Node's own, which hands
  // the connection to the next answer a pipelining client asked for. Hot path: one listener per
  // request, the same function for all (no closure), only where there is a limit.
  function answered (this: ServerResponse): void {
    const socket = this.req.socket
    if (!open.has(socket) || !waitsForRequest(socket)) return
    waiting.delete(socket)
    waiting.add(socket)
  }
  const onRequest = (_req: IncomingMessage, res: ServerResponse): void => { res.once('finish', answered) }
  server.on('request', onRequest)
  // A request with `Expect: 100-continue` comes as checkContinue instead where the listener
  // answers that event (the API listener). Not listened to where it does not: Node then answers
  // 100 itself and hands the request over as 'request', but any listener makes it hand the
  // request to checkContinue alone, and forward-auth would never see it.
  if (server.listenerCount('checkContinue') > 0) server.on('checkContinue', onRequest)
}

/**
 * Whether a connection waits for a request, with nothing owed to it: no answer being written or
 * queued (a request in flight has its answer from its headers on), nothing of it waiting in the
 * socket, its writing side open (a connection closing after its answer lingers to read what
 * its client still sends: closing it at once could lose the answer's end), and no byte of a
 * request read: none since it was accepted, or its parser between requests (Node's
 * duration(): 0 once a request has been read whole, until the first byte of the next).
 */
function waitsForRequest (socket: Socket): boolean {
  if (socket.destroyed || socket.writableEnded || socket.writableLength > 0 || answering(socket) != null) return false
  if (socket.bytesRead === 0) return true
  const parser = (socket as Socket & { parser?: { duration?: () => number } | null }).parser
  return typeof parser?.duration === 'function' && parser.duration() === 0
}

/**
 * The health listener past `max` connections closes the oldest one not being answered (waiting
 * for its request, or idle between scrapes) or whose answer waits for its client to read it
 * (waitsForClient), or the new one when every one is being written. With Node's maxConnections
 * instead, 32 connections opened and left silent (nothing to time out: no request begun), or
 * asking for /metrics and reading nothing, shut out every probe for as long as they stayed open, and Kubernetes restarted
 * the gate on its failed liveness probes. A probe sends its request as it connects and its small
 * answer is written at once, so it is the newest of the connections that could be closed, never
 * the oldest.
 */
function keepOpenForProbes (server: Server, max: number, dropped: () => void): void {
  // In the order they came (a Set iterates in insertion order): the oldest first.
  const open = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    open.add(socket)
    socket.once('close', () => { open.delete(socket) })
    if (open.size <= max) return
    let closed = socket
    for (const other of open) {
      if (other !== socket && (answering(other) == null || waitsForClient(other))) {
        closed = other
        break
      }
    }
    open.delete(closed)
    closed.destroy()
    dropped()
  })
}

/**
 * Whether bytes of an answer wait in the socket's own buffer: the kernel's is full, its client
 * reads nothing. Any bytes, not writableNeedDrain, which Node sets only past 16 KiB: a probe's
 * answer is a few hundred bytes, and a client that pipelines probes and reads none of their
 * answers held its connection, taken as being answered, for as long as it kept asking.
 */
function waitsForClient (socket: Socket): boolean {
  return socket.writableLength > 0
}

/** The answer a connection is writing, or is to write next (Node's own field): none once its last has gone. */
export function answering (socket: Duplex): ServerResponse | null | undefined {
  return (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage
}

/**
 * Calls `write` at once for the first event, then at most once per DROP_LOG_WINDOW_MS with the
 * number of events since (and the last event's code): a flood costs a line per window, not per
 * connection.
 */
function windowedLog (write: (count: number, code: string | undefined) => void): { add (code?: string): void, close (): void } {
  let timer: NodeJS.Timeout | null = null
  let pending = 0
  let lastCode: string | undefined
  const tick = (): void => {
    if (pending === 0) {
      timer = null
      return
    }
    write(pending, lastCode)
    pending = 0
    timer = setTimeout(tick, DROP_LOG_WINDOW_MS).unref()
  }
  return {
    add (code) {
      lastCode = code
      if (timer !== null) {
        pending++
        return
      }
      write(1, code)
      timer = setTimeout(tick, DROP_LOG_WINDOW_MS).unref()
    },
    close () {
      if (timer !== null) clearTimeout(timer)
      timer = null
    }
  }
}
