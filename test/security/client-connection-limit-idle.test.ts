// At GATE_MAX_CONNECTIONS, every new connection was closed as it came while the connections open
// sat idle between keep-alive requests (up to GATE_CLIENT_KEEPALIVE_TIMEOUT_MS, and for good where
// their clients asked again within it) or silent after connecting (up to the headers timeout):
// eight connections that each sent a request and kept their connection shut every other client
// out of a gate limited to eight. As nginx does when its worker_connections run out, a connection
// waiting for a request is now closed for the new one, the one that has waited longest first;
// only when every connection is busy (a request in flight, its answer being written, a request's
// first bytes read) is the new one closed.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { scrape, total } from '../helpers/metrics.ts'

const MAX = 8
const PATH = '/api/v4/projects/1/packages'
const SECRET = 'glpat-idleclosed0000000000'
const IDLE_CLOSED = 'job_token_gate_client_connections_idle_closed_total'
const DROPPED = 'job_token_gate_client_connections_dropped_total'

interface Client {
  readonly socket: Socket
  /** Everything the gate sent. */
  readonly received: () => string
  /** Resolves once the gate closed the connection. */
  readonly closed: Promise<void>
}

async function client (t: TestContext, url: string): Promise<Client> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  t.after(() => socket.destroy())
  let text = ''
  socket.on('data', (d: Buffer) => { text += d.toString('latin1') })
  socket.on('error', () => {})
  const closed = new Promise<void>(resolve => socket.once('close', () => { resolve() }))
  await new Promise(resolve => socket.once('connect', resolve))
  return { socket, received: () => text, closed }
}

/** Whether `text` holds an answer whole: its headers and a JSON body, sized or chunked. */
function whole (text: string): boolean {
  return /\r\n\r\n[\s\S]*\}(\r\n0\r\n\r\n)?$/.test(text)
}

/** Sends a request on the client's connection; the status line of its answer. */
async function ask (c: Client, path = PATH): Promise<string> {
  const before = c.received().length
  c.socket.write(`GET ${path} HTTP/1.1\r\nHost: gitlab.example\r\nPrivate-Token: ${SECRET}\r\n\r\n`)
  await eventually(() => whole(c.received().slice(before)), { message: 'the answer' })
  return c.received().slice(before).split('\r\n')[0]!
}

/** A round trip through the gate's event loop: what its clients sent before has been read. */
async function settled (gate: TestGate): Promise<void> {
  for (let i = 0; i < 2; i++) assert.equal((await send(gate.healthUrl, 'GET', '/-/liveness')).status, 200)
}

async function counts (gate: TestGate, listener = 'api'): Promise<{ idleClosed: number, dropped: number }> {
  const { samples } = await scrape(gate.healthUrl)
  return { idleClosed: total(samples, IDLE_CLOSED, { listener }), dropped: total(samples, DROPPED, { listener, reason: 'max_connections' }) }
}

test('at the limit, connections idle between keep-alive requests are closed for new ones, the longest idle first', async (t) => {
  const gate = await startTestGate(t, { GATE_MAX_CONNECTIONS: String(MAX) })
  const idle: Client[] = []
  for (let i = 0; i < MAX; i++) {
    const c = await client(t, gate.url)
    assert.equal(await ask(c), 'HTTP/1.1 200 OK')
    idle.push(c)
  }
  // The first asks again: it has waited least now, the second longest.
  assert.equal(await ask(idle[0]!), 'HTTP/1.1 200 OK')
  // A new client is served (with Node's maxConnections: its connection closed as it came).
  const first = await client(t, gate.url)
  assert.equal(await ask(first), 'HTTP/1.1 200 OK')
  await idle[1]!.closed
  const second = await client(t, gate.url)
  assert.equal(await ask(second), 'HTTP/1.1 200 OK')
  await idle[2]!.closed
  assert.deepEqual(idle.map(c => c.socket.destroyed), idle.map((_c, i) => i === 1 || i === 2))
  // The others keep their connections and are served on them.
  assert.equal(await ask(idle[0]!), 'HTTP/1.1 200 OK')
  assert.equal(await ask(idle[7]!), 'HTTP/1.1 200 OK')
  assert.deepEqual(await counts(gate), { idleClosed: 2, dropped: 0 })
  // One line a window, nothing a client sent in it.
  const lines = gate.logs.filter(l => l.msg === 'client connection limit reached: connections waiting for a request closed for new ones')
  assert.deepEqual(lines.map(l => [l.listener, l.max_connections, l.closed, l.level]), [['api', MAX, 1, 40]])
  assert.ok(!gate.logs.some(l => JSON.stringify(l).includes(SECRET)))
})

test('at the limit, connections that sent nothing yet are closed for new ones', async (t) => {
  const gate = await startTestGate(t, { GATE_MAX_CONNECTIONS: String(MAX) })
  const silent: Client[] = []
  for (let i = 0; i < MAX; i++) silent.push(await client(t, gate.url))
  await settled(gate)
  const late = await client(t, gate.url)
  assert.equal(await ask(late), 'HTTP/1.1 200 OK')
  await silent[0]!.closed
  assert.equal(silent[0]!.received(), '', 'closed with nothing written')
  assert.deepEqual(silent.map(c => c.socket.destroyed), silent.map((_c, i) => i === 0))
  assert.deepEqual(await counts(gate), { idleClosed: 1, dropped: 0 })
})

test('at the limit, busy connections are never closed: requests in flight, answers being written, requests begun; the new one is', async (t) => {
  const gate = await startTestGate(t, { GATE_MAX_CONNECTIONS: String(MAX) })
  // The upstream's answers, held until the test lets each go.
  const held: Array<() => void> = []
  let big: (() => void) | null = null
  gate.respond = (req: IncomingMessage, res: ServerResponse) => {
    // A large answer for /big: more than the socket buffers take from a client that reads nothing.
    const body = req.url!.endsWith('/big') ? JSON.stringify({ big: 'x'.repeat(16 << 20) }) : JSON.stringify({ ok: true })
    const answer = (): void => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(body) }
    if (req.url!.endsWith('/big')) big = answer
    else held.push(answer)
  }
  const busy: Client[] = []
  // Four with their request at the upstream.
  for (let i = 0; i < 4; i++) {
    const c = await client(t, gate.url)
    c.socket.write(`GET ${PATH} HTTP/1.1\r\nHost: gitlab.example\r\n\r\n`)
    busy.push(c)
  }
  // One whose answer is being written to a client that reads none of it.
  const reading = await client(t, gate.url)
  reading.socket.pause()
  reading.socket.write(`GET ${PATH}/big HTTP/1.1\r\nHost: gitlab.example\r\n\r\n`)
  busy.push(reading)
  await eventually(() => held.length === 4 && big !== null, { message: 'five requests at the upstream' })
  big!()
  // One sending the headers of a request a byte at a time; one that had a request answered and
  // then sent the start of the next; one that sent a request's headers and part of its body.
  const trickling = await client(t, gate.url)
  trickling.socket.write('G')
  busy.push(trickling)
  const next = await client(t, gate.url)
  next.socket.write(`GET ${PATH} HTTP/1.1\r\nHost: gitlab.example\r\n\r\n`)
  busy.push(next)
  await eventually(() => held.length === 5, { message: 'the request at the upstream' })
  held.pop()!()
  await eventually(() => next.received().startsWith('HTTP/1.1 200 OK') && whole(next.received()), { message: 'its answer' })
  next.socket.write('GET /api/v4/pro')
  const uploading = await client(t, gate.url)
  uploading.socket.write(`PUT /api/v4/projects/1/packages/generic/p/1/f.bin HTTP/1.1\r\nHost: gitlab.example\r\nContent-Length: 100\r\n\r\n0123456789`)
  busy.push(uploading)
  await settled(gate)
  assert.equal(busy.length, MAX)
  const { idleClosed: before } = await counts(gate)

  // Every one is busy: the new connection is closed, and none of them.
  const refused = await client(t, gate.url)
  refused.socket.write(`GET ${PATH} HTTP/1.1\r\nHost: gitlab.example\r\n\r\n`)
  await eventually(() => refused.socket.destroyed, { message: 'the new connection closed' })
  assert.equal(refused.received(), '')
  assert.deepEqual(busy.map(c => c.socket.destroyed), busy.map(() => false))
  assert.deepEqual(await counts(gate), { idleClosed: before, dropped: 1 })

  // Each is still served in full: the held requests, the large answers, the rest of the request begun.
  for (const answer of held.splice(0, 4)) answer()
  for (const c of busy.slice(0, 4)) await eventually(() => c.received().startsWith('HTTP/1.1 200 OK') && whole(c.received()), { message: 'a held answer' })
  reading.socket.resume()
  await eventually(() => whole(reading.received()), { timeoutMs: 30_000, message: 'the large answer read whole' })
  assert.ok(reading.received().length > 16 << 20)
  next.socket.write(`jects/1/packages HTTP/1.1\r\nHost: gitlab.example\r\n\r\n`)
  await eventually(() => held.length === 1, { message: 'the request begun, at the upstream' })
})

test('the forward-auth listener: at the limit, idle connections are closed for new ones', async (t) => {
  const gate = await startTestGate(t, { GATE_MAX_CONNECTIONS: String(MAX), GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${gate.gate.authAddress()!.port}`
  const decide = async (c: Client): Promise<string> => {
    const before = c.received().length
    c.socket.write(`GET / HTTP/1.1\r\nHost: gate\r\nX-Original-Method: GET\r\nX-Original-URI: ${PATH}\r\n\r\n`)
    await eventually(() => /\r\n\r\n/.test(c.received().slice(before)), { message: 'the decision' })
    return c.received().slice(before).split('\r\n')[0]!
  }
  const idle: Client[] = []
  for (let i = 0; i < MAX; i++) {
    const c = await client(t, auth)
    assert.match(await decide(c), /^HTTP\/1\.1 200 /)
    idle.push(c)
  }
  const late = await client(t, auth)
  assert.match(await decide(late), /^HTTP\/1\.1 200 /)
  await idle[0]!.closed
  assert.deepEqual(await counts(gate, 'auth'), { idleClosed: 1, dropped: 0 })
  // A decision asked with `Expect: 100-continue` is still made (a checkContinue listener on this
  // listener, which has none, would have Node hand such requests to it alone).
  const asked = send(auth, 'GET', '/', { 'x-original-method': 'GET', 'x-original-uri': PATH, expect: '100-continue' })
  let timer: NodeJS.Timeout | undefined
  const res = await Promise.race([asked, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error('no decision within 10 s')) }, 10_000) })])
  clearTimeout(timer)
  assert.equal(res.status, 200)
})

test('a burst of connections past the limit, each sending its request as it connects: the new ones are closed, not those accepted before them', async (t) => {
  const gate = await startTestGate(t, { GATE_MAX_CONNECTIONS: String(MAX) })
  const held: Array<() => void> = []
  gate.respond = (_req: IncomingMessage, res: ServerResponse) => {
    held.push(() => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"ok":true}') })
  }
  const { hostname, port } = new URL(gate.url)
  const EXTRA = 4
  const sockets: Socket[] = []
  t.after(() => { for (const s of sockets) s.destroy() })
  for (let i = 0; i < MAX + EXTRA; i++) {
    const s = connect(Number(port), hostname, () => { s.write(`GET ${PATH} HTTP/1.1\r\nHost: gitlab.example\r\n\r\n`) })
    s.on('error', () => {})
    sockets.push(s)
  }
  await eventually(() => held.length + sockets.filter(s => s.destroyed).length === MAX + EXTRA, { message: 'the burst settled' })
  // Taken as waiting from their accept, those accepted first were closed for later ones, their requests unread.
  assert.equal(held.length, MAX)
  assert.deepEqual(await counts(gate), { idleClosed: 0, dropped: EXTRA })
  for (const answer of held) answer()
})
