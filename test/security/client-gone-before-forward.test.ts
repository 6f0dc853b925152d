// Finding: a client that went away while the gate was still deciding (its job token being looked
// up in GitLab, a group route's project being found, the grants read from Redis) was not
// noticed. The forwarding step listened for the answer's 'close', which had already been
// emitted, so the request was sent upstream all the same (a DELETE GitLab then carried out for
// nobody), and the answer's first chunk, written to the destroyed response, "waited for drain"
// forever: the upstream connection stayed open past every timeout, the request stayed in flight,
// and its decision line was never written. A request whose client is gone is not forwarded.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

test('a client gone while the gate decides: nothing is forwarded, nothing is held, the decision is logged', async (t) => {
  const received: string[] = []
  let open = 0
  const upstream = createServer((req, res) => {
    received.push(`${req.method ?? ''} ${req.url ?? ''}`)
    open++
    res.socket!.once('close', () => { open-- })
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(1 << 20) })
    res.end(Buffer.alloc(1 << 20))
  })
  await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
  t.after(() => { upstream.closeAllConnections(); upstream.close() })
  const g = await startTestGate(t, {
    GATE_UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    GATE_UPSTREAM_HEADERS_TIMEOUT_MS: '1000',
    GATE_UPSTREAM_BODY_TIMEOUT_MS: '1000'
  })
  // The job token's lookup is held while the clients leave: each request is in the gate,
  // waiting on it, before its client goes, however slowly a busy machine runs.
  g.gitlab.hold.add('job')
  const port = Number(new URL(g.url).port)
  const sockets = []
  for (let i = 0; i < 3; i++) {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    socket.write(`DELETE /api/v4/projects/100/packages/generic/p/1.0/f${i}.bin HTTP/1.1\r\nHost: gitlab.example\r\nJOB-TOKEN: ${TOKENS.app}\r\n\r\n`)
    sockets.push(socket)
  }
  await eventually(() => g.gate.inFlight() === 3 && g.gitlab.calls.job > 0, { message: 'the three requests waiting on the lookup' })
  for (const socket of sockets) socket.destroy()
  // The gate hears each client go (loopback, the same process) long before this.
  await new Promise(resolve => setTimeout(resolve, 500))
  g.gitlab.hold.delete('job')
  g.gitlab.release()
  // Each request ends with its decision line (one held by an undrained answer never would).
  const lines = await eventually(() => { const l = g.logs.filter(l => l.msg === 'decision'); return l.length === 3 && l }, { message: 'a decision line for each request' })
  assert.deepEqual(received, [], 'requests whose clients had gone must not reach the upstream')
  assert.equal(open, 0, 'no upstream connection is held for a client that is gone')
  assert.equal(g.gate.inFlight(), 0, 'the requests are over')
  for (const line of lines) assert.equal(line.reason, 'CLIENT_ABORTED')
})
