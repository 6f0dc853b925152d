// HTTP/1.1 pipelining on the gate's listeners: a connection's requests one at a time.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Logger } from 'pino'

/** Requests a client may pipeline on one connection ahead of the one being handled; more close it. */
export const MAX_PIPELINED_REQUESTS = 32

/**
 * HTTP/1.1 pipelining: Node's server parses every request a client writes on a connection ahead
 * of the answers and emits each at once, its answer queued behind the earlier ones (given the
 * connection, `socket`, when they have gone). Handled at once, one connection's requests were
 * decided and forwarded all at the same time: thousands of upstream connections and lookups for
 * one client connection, where GitLab's own server reads a connection's next request only once the
 * last was answered. And a queued answer is never closed when the client goes away, so what it
 * waited on (a paused upstream request, the count in flight) was held for good.
 *
 * A request's turn: true when its answer has the connection (every request but a pipelined one);
 * else a promise of true once the answers before it have gone, or false when the connection
 * closed first (the request never starts). Node keeps parsing while queued requests write
 * nothing, so a client more than MAX_PIPELINED_REQUESTS ahead has its connection closed: false
 * (RFC 9112 9.3.2: a pipelining client retries what was not answered).
 *
 * A request read after an answer that closed the connection (`Connection: close`: a refusal that
 * leaves its body unread, a request without Host) never starts either: false. Node hands such a
 * request over with the connection, whose writing side has already ended, so it was decided and
 * forwarded to GitLab while its answer could no longer reach the client, which retries it
 * elsewhere (RFC 9112 9.6: a server that sent `close` processes no further request; GitLab's
 * Workhorse reads none). The connection closes once the answer before it has gone.
 */
export function createTurns (logger: Logger): (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean> {
  const queues = new WeakMap<Socket, Set<(started: boolean) => void>>()
  return (req, res) => {
    // Hot path: one test (and a second only for a connection whose writing side has ended).
    if (res.socket !== null) return !res.socket.writableEnded
    const socket = req.socket
    if (socket.destroyed) return false
    let queue = queues.get(socket)
    if (queue === undefined) {
      const waiting = queue = new Set()
      queues.set(socket, waiting)
      socket.once('close', () => { for (const settle of [...waiting]) settle(false) })
    }
    if (queue.size >= MAX_PIPELINED_REQUESTS) {
      logger.warn({ pipelined: queue.size + 1 }, 'too many pipelined requests on one connection: closed')
      socket.destroy()
      return false
    }
    const waiting = queue
    return new Promise<boolean>(resolve => {
      const settle = (started: boolean): void => {
        if (!waiting.delete(settle)) return
        resolve(started)
      }
      waiting.add(settle)
      res.once('socket', () => { settle(true) })
    })
  }
}
