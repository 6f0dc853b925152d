// Client connections are bounded below the open files limit. Unbounded, clients that opened
// connections and kept them open used every descriptor of the process: libuv then closed each new
// connection as it came, unseen by Node (the health listener's too, so probes failed), requests on
// open connections got 502 for want of an upstream connection, and nothing was logged or counted.
// Now a connection over GATE_MAX_CONNECTIONS (by default derived from the open files soft limit)
// is closed by the gate, counted and logged once a window, and descriptors remain for the rest.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { Duplex } from 'node:stream'
import { pino } from 'pino'
import { ConfigError, loadConfig } from '../../src/config.ts'
import { ACCEPT_ERRORS_PER_TURN, connectionLimitOf, FD_RESERVE, HEALTH_MAX_CONNECTIONS, limitClientConnections, openFilesSoftLimit } from '../../src/gate/connections.ts'
import { createHealthServer, HEALTH_IDLE_TIMEOUT_MS } from '../../src/gate/health.ts'
import { createMetrics } from '../../src/metrics.ts'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { parseMetrics, scrape, total } from '../helpers/metrics.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { serveUnderFileLimit } from '../helpers/serve.ts'

const OPEN_FILES = 256
/** What the gate derives from OPEN_FILES: (256 - 128) / 3. */
const MAX = Math.floor((OPEN_FILES - FD_RESERVE) / 3)
/** More than the limit, and more than the descriptors left without one. */
const FLOOD = 160
const HELD = '/api/v4/projects/2/packages'
const SECRET = 'glpat-flood0000000000000000'
const DROPPED = 'client_connections_dropped_total'

/** One request on a kept-alive connection; its status line. */
function requestOn (socket: Socket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (d: Buffer) => { resolve(d.toString('latin1').split('\r\n')[0]!) })
    socket.once('close', () => { reject(new Error('connection closed')) })
    socket.write(`GET ${path} HTTP/1.1\r\nHost: gitlab.example\r\n\r\n`)
  })
}

test('a flood of connections that stay open: those over the limit are closed, counted and logged; health, busy connections and upstream calls keep their descriptors', async (t) => {
  if (!requireTool(t, spawnSync('prlimit', ['--version']).status === 0 ? null : 'prlimit (util-linux)')) return
  const { gate, held } = await serveUnderFileLimit(t, OPEN_FILES, HELD)
  const start = gate.lines.find(l => l.msg === 'client connection limit')
  assert.equal(start?.max_connections, MAX, 'the limit derived from the open files soft limit')
  assert.equal(start?.source, 'fd_limit')
  const { hostname, port } = new URL(gate.api)

  // A client's connection opened before the flood, kept alive: idle, it is closed for the first
  // connection past the limit (test/security/client-connection-limit-idle.test.ts).
  const kept = connect(Number(port), hostname)
  t.after(() => kept.destroy())
  assert.equal(await requestOn(kept, '/api/v4/projects/1/packages'), 'HTTP/1.1 200 OK')
  const keptClosed = new Promise(resolve => kept.once('close', resolve))

  // Connections that each send a request the upstream holds: each holds an upstream connection too.
  const sockets: Socket[] = []
  t.after(() => { for (const s of sockets) s.destroy() })
  let closed = 0
  let answered = 0
  for (let i = 0; i < FLOOD; i++) {
    const s = connect(Number(port), hostname)
    s.on('error', () => {})
    s.on('connect', () => { s.write(`GET ${HELD} HTTP/1.1\r\nHost: gitlab.example\r\nPrivate-Token: ${SECRET}\r\n\r\n`) })
    s.on('data', () => { answered++ })
    s.on('close', () => { closed++ })
    sockets.push(s)
  }
  // Every connection is closed, answered or has its request at the upstream.
  await eventually(() => closed + answered + held.length >= FLOOD, { timeoutMs: 60_000, message: 'the flood settled' })
  assert.equal(answered, 0, 'no request of the flood was answered (without descriptors: 502 for want of an upstream connection)')
  assert.equal(held.length, MAX, 'the limit reached the upstream, the kept connection closed for one')
  assert.equal(closed, FLOOD - MAX, 'the rest closed')
  await keptClosed

  // The health listener still answers, and counts what was closed.
  assert.equal((await send(gate.health, 'GET', '/-/liveness')).status, 200)
  const { samples } = await scrape(gate.health)
  // The kept connection, and any of the flood's closed before the gate read its request, were waiting for one.
  const idleClosed = total(samples, 'job_token_gate_client_connections_idle_closed_total', { listener: 'api' })
  assert.ok(idleClosed >= 1)
  assert.equal(total(samples, `job_token_gate_${DROPPED}`, { listener: 'api', reason: 'max_connections' }) + idleClosed, closed + 1)
  assert.equal(total(samples, `job_token_gate_${DROPPED}`, { reason: 'accept_error' }), 0)
  assert.equal(total(samples, 'job_token_gate_client_connections', { listener: 'api', state: 'open' }), MAX)
  assert.equal(total(samples, 'job_token_gate_client_connections', { listener: 'api', state: 'max' }), MAX)
  // Logged, a line a window and not a line a connection; no token in any line.
  const warned = gate.lines.filter(l => l.msg === 'client connection limit reached: new connections closed')
  assert.ok(warned.length >= 1 && warned.length < 10, `${warned.length} lines for ${closed} connections`)
  assert.deepEqual([warned[0]!.listener, warned[0]!.max_connections, warned[0]!.dropped, warned[0]!.level], ['api', MAX, 1, 40])
  assert.ok(gate.lines.some(l => l.msg === 'client connection limit reached: connections waiting for a request closed for new ones'))
  assert.ok(!gate.lines.some(l => JSON.stringify(l).includes(SECRET)))

  // The held requests are answered once the upstream answers.
  for (const answer of held.splice(0)) answer()
  await eventually(() => answered === MAX, { timeoutMs: 60_000, message: 'the held requests answered' })
})

test('the limit: GATE_MAX_CONNECTIONS, else derived from the open files soft limit; 0 or an unreadable limit: none', () => {
  const base = { GATE_UPSTREAM_URL: 'http://127.0.0.1:1' }
  assert.equal(loadConfig(base).maxConnections, undefined)
  assert.equal(loadConfig({ ...base, GATE_MAX_CONNECTIONS: '0' }).maxConnections, 0)
  assert.equal(loadConfig({ ...base, GATE_MAX_CONNECTIONS: '5000' }).maxConnections, 5000)
  for (const bad of ['-1', 'many', '1.5', '']) {
    assert.throws(() => loadConfig({ ...base, GATE_MAX_CONNECTIONS: bad }), (err: unknown) => err instanceof ConfigError && /GATE_MAX_CONNECTIONS must be/.test(err.message), bad)
  }
  const cases: Array<[number | undefined, number | null, number, ReturnType<typeof connectionLimitOf>]> = [
    [undefined, 1024, 1, { max: 298, source: 'fd_limit' }],
    [undefined, 1024, 2, { max: 149, source: 'fd_limit' }],
    [undefined, 1_048_576, 1, { max: 349_482, source: 'fd_limit' }],
    // Too few descriptors for any share: one connection, not none (the start logs the limit).
    [undefined, 64, 1, { max: 1, source: 'fd_limit' }],
    [undefined, null, 1, { max: null, source: 'none' }],
    [300, 1024, 2, { max: 300, source: 'setting' }],
    [0, 1024, 1, { max: null, source: 'none' }]
  ]
  for (const [setting, soft, listeners, expected] of cases) assert.deepEqual(connectionLimitOf(setting, soft, listeners), expected, `${String(setting)} ${String(soft)} ${listeners}`)
  const limits = (soft: string): string => `Limit                     Soft Limit           Hard Limit           Units     \nMax processes             63619                63619                processes \nMax open files            ${soft.padEnd(20)} 524288               files     \n`
  assert.equal(openFilesSoftLimit(() => limits('1024')), 1024)
  assert.equal(openFilesSoftLimit(() => limits('unlimited')), null)
  assert.equal(openFilesSoftLimit(() => { throw new Error('ENOENT') }), null)
})

test('accept errors Node reports are counted and logged once a window; an accept that keeps failing ends the process as before, logged', async () => {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  const metrics = createMetrics()
  const api = createServer()
  const health = createServer()
  const connections = limitClientConnections({ api, auth: null, health }, 10, logger, metrics, 1024)
  const acceptError = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`accept ${code}`), { code, errno: -24, syscall: 'accept' })
  try {
    for (let i = 0; i < 5; i++) api.emit('error', acceptError('EMFILE'))
    health.emit('error', acceptError('ENFILE'))
    const samples = parseMetrics(await metrics.scrape())
    assert.equal(total(samples, `job_token_gate_${DROPPED}`, { listener: 'api', reason: 'accept_error' }), 5)
    assert.equal(total(samples, `job_token_gate_${DROPPED}`, { listener: 'health', reason: 'accept_error' }), 1)
    assert.equal(total(samples, 'job_token_gate_client_connections', { listener: 'api', state: 'max' }), 10)
    assert.equal(total(samples, 'job_token_gate_client_connections', { listener: 'health', state: 'max' }), 32)
    const logged = lines.filter(l => l.msg === 'client connections cannot be accepted: closed unserved')
    assert.deepEqual(logged.map(l => [l.listener, l.code, l.dropped, l.level]), [['api', 'EMFILE', 1, 50], ['health', 'ENFILE', 1, 50]])
    // A listen error while listen() waits for it is listen()'s; after, any error but accept's ends the process as Node's default does.
    const listening = (): void => {}
    api.once('error', listening)
    api.emit('error', Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE', syscall: 'listen' }))
    assert.throws(() => api.emit('error', Object.assign(new Error('other'), { code: 'EOTHER' })), /other/)
    // libuv retries a failing accept without returning to the event loop: past the bound, the error is thrown.
    assert.throws(() => { for (let i = 0; i <= ACCEPT_ERRORS_PER_TURN; i++) api.emit('error', acceptError('EMFILE')) }, /accept EMFILE/)
    assert.equal(lines.filter(l => l.level === 60).length, 1)
  } finally {
    connections.close()
  }
})

test('the health listener: connections opened and left silent never shut out a probe; past its bound the oldest not being answered is closed', async (t) => {
  const gate = await startTestGate(t)
  const { hostname, port } = new URL(gate.healthUrl)
  const silent: Socket[] = []
  t.after(() => { for (const s of silent) s.destroy() })
  const EXTRA = 8
  for (let i = 0; i < HEALTH_MAX_CONNECTIONS + EXTRA; i++) {
    const s = connect(Number(port), hostname)
    s.on('error', () => {})
    silent.push(s)
    await new Promise(resolve => s.once('connect', resolve))
  }
  // Each one past the bound closed the oldest: nothing of them was read, nor will be.
  await eventually(() => silent.filter(s => s.destroyed).length === EXTRA, { timeoutMs: 30_000, message: 'the oldest closed' })
  assert.deepEqual(silent.map(s => s.destroyed), silent.map((_s, i) => i < EXTRA))
  // A probe is answered (with Node's maxConnections: its connection closed as it came, for as long as the others stayed).
  assert.equal((await send(gate.healthUrl, 'GET', '/-/liveness')).status, 200)
  assert.equal((await send(gate.healthUrl, 'GET', '/-/readiness')).status, 200)
  const { samples } = await scrape(gate.healthUrl)
  assert.ok(total(samples, `job_token_gate_${DROPPED}`, { listener: 'health', reason: 'max_connections' }) >= EXTRA)
  const warned = gate.logs.filter(l => l.msg === 'client connection limit reached: new connections closed')
  assert.deepEqual([warned[0]?.listener, warned[0]?.max_connections], ['health', HEALTH_MAX_CONNECTIONS])
})

test('the health listener closes a connection silent in both directions (a client that stopped reading its answer) after a while', () => {
  const health = healthServer()
  assert.equal(health.timeout, HEALTH_IDLE_TIMEOUT_MS)
  assert.ok(HEALTH_IDLE_TIMEOUT_MS > 0)
})

// Connections whose client reads nothing of its answers: `/metrics` answers pile up past the
// socket's buffer mark (writableNeedDrain). A probe's small answers do not: once the kernel's
// buffers are full the next waits in the socket's own buffer, a few hundred bytes, and such a
// connection was taken as being answered, so 32 of them were never closed for a probe and every
// probe's connection was closed as it came. Any bytes of an answer waiting mark a client that
// does not read.
for (const path of ['/metrics', '/-/liveness', '/-/readiness', '/nothing-here']) {
  test(`the health listener: connections whose client stopped reading their answers (${path}) never shut out a probe`, async (t) => {
    const metrics = createMetrics()
    const health = healthServer(metrics)
    const connections = limitClientConnections({ api: createServer(), auth: null, health }, 10, pino({ enabled: false }), metrics, 1024)
    t.after(() => { connections.close(); health.closeAllConnections(); health.close() })
    await new Promise<void>(resolve => { health.listen(0, '127.0.0.1', resolve) })
    const { port } = health.address() as AddressInfo
    // Connections handed to the listener as its own (Node's server takes any duplex stream): the
    // kernel's buffers full, a write never completes, so each connection's first answer waits in
    // its socket, and the next behind it.
    const stalled: Duplex[] = []
    t.after(() => { for (const s of stalled) s.destroy() })
    for (let i = 0; i < HEALTH_MAX_CONNECTIONS; i++) {
      const s = new Duplex({ read () {}, write () { /* never written: the client reads nothing */ } })
      stalled.push(s)
      health.emit('connection', s)
      s.push(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\nGET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
    }
    await eventually(() => stalled.every(s => s.writableLength > 0), { message: 'every answer stalled' })
    if (path !== '/metrics') assert.ok(stalled.every(s => !s.writableNeedDrain), 'a few hundred bytes wait: not past the buffer\'s mark')
    // A probe is answered: the oldest stalled connection is closed for it (each is closed after 30 s of silence too).
    assert.equal((await send(`http://127.0.0.1:${port}`, 'GET', '/-/liveness')).status, 200)
    assert.deepEqual(stalled.map(s => s.destroyed), stalled.map((_s, i) => i === 0))
  })
}

function healthServer (metrics = createMetrics()): Server {
  return createHealthServer({ metrics, logger: pino({ enabled: false }), store: async () => ({ ok: true, kind: 'memory', mode: 'volatile', subscribed: true }), catalog: () => ({ version: 'v', routes: 0 }), upstreamUsable: () => true, draining: () => false })
}
