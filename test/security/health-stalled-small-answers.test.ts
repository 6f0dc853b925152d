// The health listener, past its 32 connections, closes the oldest one not being answered, or whose
// answer waits for its client to read it, so that probes get in. An answer waiting was told by
// the socket's writableNeedDrain, which Node sets only once 16 KiB wait in the socket's buffer:
// a `/metrics` answer. A client that pipelines `/-/liveness` and reads nothing fills the kernel's
// buffers with the small answers, and the next one then waits in the socket's own buffer, a few
// hundred bytes, its connection taken as being answered. 32 such connections were never closed
// for a probe, and every probe's connection was closed as it came, until they timed out (30 s of
// silence, which the client's next request begins again). A connection with any bytes of an
// answer waiting in its socket's buffer is now one whose client is not reading.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Duplex } from 'node:stream'
import { pino } from 'pino'
import { HEALTH_MAX_CONNECTIONS, limitClientConnections } from '../../src/gate/connections.ts'
import { createHealthServer } from '../../src/gate/health.ts'
import { createMetrics } from '../../src/metrics.ts'
import { eventually } from '../helpers/eventually.ts'
import { send } from '../helpers/http.ts'

function healthServer (metrics = createMetrics()): Server {
  return createHealthServer({ metrics, logger: pino({ enabled: false }), store: async () => ({ ok: true, kind: 'memory', mode: 'volatile', subscribed: true }), catalog: () => ({ version: 'v', routes: 0 }), upstreamUsable: () => true, draining: () => false })
}

for (const path of ['/-/liveness', '/-/readiness', '/nothing-here']) {
  test(`connections whose small answers (${path}) wait unread in their sockets never shut out a probe`, async (t) => {
    const metrics = createMetrics()
    const health = healthServer(metrics)
    const connections = limitClientConnections({ api: createServer(), auth: null, health }, 10, pino({ enabled: false }), metrics, 1024)
    t.after(() => { connections.close(); health.closeAllConnections(); health.close() })
    await new Promise<void>(resolve => { health.listen(0, '127.0.0.1', resolve) })
    const { port } = health.address() as AddressInfo
    // Connections handed to the listener as its own: the kernel's buffers full, a write never
    // completes, so each connection's first answer waits in its socket, and the next behind it.
    const stalled: Duplex[] = []
    t.after(() => { for (const s of stalled) s.destroy() })
    for (let i = 0; i < HEALTH_MAX_CONNECTIONS; i++) {
      const s = new Duplex({ read () {}, write () { /* never written: the client reads nothing */ } })
      stalled.push(s)
      health.emit('connection', s)
      s.push(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\nGET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
    }
    await eventually(() => stalled.every(s => s.writableLength > 0), { message: 'every answer stalled' })
    assert.ok(stalled.every(s => !s.writableNeedDrain), 'a few hundred bytes wait: not past the buffer\'s mark')
    assert.equal((await send(`http://127.0.0.1:${port}`, 'GET', '/-/liveness')).status, 200)
    assert.deepEqual(stalled.map(s => s.destroyed), stalled.map((_s, i) => i === 0))
  })
}
