// A client that closes its writing side after a whole request (a half-close: shutdown(SHUT_WR),
// `nc -N`) is taken as gone, as nginx in front of an upstream (proxy_ignore_client_abort off, its
// default: 499) and Workhorse (Go's net/http cancels the request's context) take it: the gate
// cannot tell it from a client that closed its connection and left, and a request whose client
// left gives up its upstream request and its lookups at GitLab (docs/security.md). Node's server
// does so with httpAllowHalfOpen off, its default; turned on, it would answer such a client, and
// keep GitLab working for every client that sent a request and left. A half-close in the middle
// of a body is an early end (test/gate/client-abort-mid-upload.test.ts).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

const REQUESTS = [
  ['GET', '/api/v4/projects/100/packages', ''],
  ['PUT', '/api/v4/projects/100/packages/generic/tool/1.0/tool.bin', 'hello']
] as const

for (const [method, path, body] of REQUESTS) for (const when of ['at once', 'once forwarded'] as const) {
  test(`a client that half-closes after a whole ${method} (${when}): its upstream request is cancelled, its connection closed unanswered, one CLIENT_ABORTED line`, async (t) => {
    const g = await startTestGate(t)
    // The upstream holds its answer until it sees the client's request go.
    const upstream: Array<{ req: IncomingMessage, res: ServerResponse, cancelled: boolean }> = []
    g.respond = (req, res) => {
      const seen = { req, res, cancelled: false }
      res.on('close', () => { if (!res.writableFinished) seen.cancelled = true })
      upstream.push(seen)
    }
    const socket: Socket = connect(Number(new URL(g.url).port), '127.0.0.1')
    t.after(() => socket.destroy())
    socket.on('error', () => {})
    let received = ''
    socket.on('data', (d: Buffer) => { received += d.toString('latin1') })
    await new Promise(resolve => socket.once('connect', resolve))
    const framing = body === '' ? '' : `Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n`
    const request = `${method} ${path} HTTP/1.1\r\nHost: gitlab.example\r\nJob-Token: ${TOKENS.app}\r\n${framing}\r\n${body}`
    if (when === 'at once') {
      socket.end(request)
    } else {
      socket.write(request)
      await eventually(() => upstream.length === 1, { message: 'the request at the upstream' })
      socket.end()
    }

    await eventually(() => socket.destroyed, { message: 'the connection closed' })
    assert.equal(received, '', 'no answer')
    // The request reached the upstream whole, or (closed at once) not at all; if it did, it was cancelled.
    if (when === 'once forwarded') assert.equal(upstream.length, 1)
    await eventually(() => upstream.every(u => u.cancelled), { message: 'the upstream request cancelled' })
    for (const u of upstream) assert.equal(u.req.headers['content-length'] ?? '0', String(body.length))
    const lines = await eventually(() => {
      const decisions = g.logs.filter(l => l.msg === 'decision' && l.method === method)
      return decisions.length > 0 ? decisions : undefined
    }, { message: 'the decision line' })
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(g.logs.filter(l => l.msg === 'decision').map(l => [l.method, l.reason, l.status]), [[method, 'CLIENT_ABORTED', 0]])
    assert.equal(lines.length, 1)
  })
}
