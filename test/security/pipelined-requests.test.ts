// Finding: HTTP/1.1 pipelining. Node's HTTP server parses every request a client writes on one
// connection ahead of the answers, and emits each at once, answers queued in order; the gate then
// decided and forwarded them all at the same time. One connection carrying 2,000 pipelined GETs
// (about 100 KB, no token needed) held 2,000 upstream connections to GitLab at once and grew the
// gate's memory by 350 MB (GitLab's own server, Go's, reads the next request of a connection only
// once the last was answered). Worse, when such a client closed its connection, the requests still
// queued behind an unsent answer were never told: their answers, never given the connection, never
// close, so their upstream requests (paused, as nobody reads them: no body timeout runs) and the
// gate's count of requests in flight were held until the process ended. Now a connection's
// requests are handled one at a time, as GitLab handles them, each once the answer before it has
// gone; queued requests of a connection that closes are dropped, and a client that pipelines more
// than a few dozen requests ahead has its connection closed.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate } from '../helpers/gate.ts'
import { legacyJobToken } from '../helpers/tokens.ts'

async function open (base: string): Promise<Socket> {
  const u = new URL(base)
  const socket = connect(Number(u.port), u.hostname)
  await new Promise((resolve, reject) => { socket.once('connect', resolve).once('error', reject) })
  return socket
}

const get = (path: string, headers = ''): string => `GET ${path} HTTP/1.1\r\nHost: gitlab.example\r\n${headers}\r\n`

test('pipelined requests on one connection reach GitLab one at a time, answered in order', async (t) => {
  const g = await startTestGate(t)
  let running = 0
  let most = 0
  g.respond = (req, res) => {
    running++
    most = Math.max(most, running)
    setTimeout(() => {
      running--
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(`answer to ${req.url ?? ''}`)
    }, 20)
  }
  const socket = await open(g.url)
  t.after(() => socket.destroy())
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  const N = 8
  socket.write(Array.from({ length: N }, (_, i) => get(`/api/v4/projects/1/uploads/${i}`)).join(''))
  await eventually(() => (received.match(/answer to /g) ?? []).length === N, { message: `${N} answers` })
  assert.deepEqual([...received.matchAll(/answer to \/api\/v4\/projects\/1\/uploads\/(\d+)/g)].map(m => Number(m[1])), Array.from({ length: N }, (_, i) => i), 'answered in order')
  assert.equal(most, 1, 'one request of the connection at a time upstream')
})

test('requests queued on a connection the client closes leave nothing in flight', async (t) => {
  const g = await startTestGate(t)
  // Answers larger than the socket buffers take: a client that does not read blocks the first.
  const big = Buffer.alloc(8 << 20, 'x')
  g.respond = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    res.end(big)
  }
  const socket = await open(g.url)
  socket.pause()
  socket.write(Array.from({ length: 10 }, (_, i) => get(`/api/v4/projects/1/uploads/${i}`)).join(''))
  await eventually(() => g.seen.length >= 1, { message: 'the first request upstream' })
  await eventually(() => g.gate.inFlight() >= 1, { message: 'the first request in flight' })
  socket.destroy()
  await eventually(() => g.gate.inFlight() === 0, { message: "no request in flight after the client left" })
  await eventually(async () => {
    const text = await (await fetch(`${g.healthUrl}/metrics`)).text()
    return /^job_token_gate_upstream_pool_requests\{state="running"\} 0$/m.test(text)
  }, { message: 'no upstream request held for the gone client' })
})

test('a connection that pipelines thousands of requests is closed, not fanned out to GitLab', async (t) => {
  const g = await startTestGate(t)
  let started = 0
  g.respond = (_req, res) => {
    started++
    setTimeout(() => { res.writeHead(200); res.end('ok') }, 200)
  }
  const socket = await open(g.url)
  socket.on('data', () => {})
  socket.on('error', () => {})
  socket.write(Array.from({ length: 2000 }, (_, i) => get(`/api/v4/projects/1/uploads/${i}`)).join(''))
  await eventually(() => socket.destroyed || started > 1, { message: 'the gate closes the connection' })
  // The stages of queued requests never ran: nothing was asked of GitLab for them.
  await new Promise(resolve => setTimeout(resolve, 300))
  assert.ok(started <= 1, `${started} requests forwarded for one connection`)
  assert.ok(socket.destroyed, 'the connection is closed')
  await eventually(() => g.gate.inFlight() === 0, { message: 'nothing left in flight' })
})

test('forward-auth: pipelined decisions with made-up tokens ask GitLab one at a time', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_IDENTITY_TIMEOUT_MS: '60000' }, { asServe: true })
  g.gitlab.hold.add('job')
  t.after(() => { g.gitlab.release() })
  const socket = await open(`http://127.0.0.1:${g.gate.authAddress()!.port}`)
  t.after(() => socket.destroy())
  socket.on('data', () => {})
  socket.write(Array.from({ length: 20 }, () => get('/api/v4/projects/100/releases', `JOB-TOKEN: ${legacyJobToken()}\r\n`)).join(''))
  await eventually(() => (g.gitlab.calls.job ?? 0) >= 1, { message: 'the first /job call' })
  await new Promise(resolve => setTimeout(resolve, 300))
  assert.equal(g.gitlab.calls.job, 1, 'one /job call at a time for one connection')
})

test('the health listener: pipelined scrapes are answered one at a time, in order; thousands close the connection', async (t) => {
  const g = await startTestGate(t)
  const socket = await open(g.healthUrl)
  t.after(() => socket.destroy())
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  socket.write(get('/-/liveness') + get('/metrics') + get('/-/liveness'))
  await eventually(() => (received.match(/HTTP\/1\.1 200/g) ?? []).length === 3, { message: 'three answers' })
  assert.match(received, /^HTTP\/1\.1 200[^]*"status":"ok"[^]*job_token_gate_[^]*"status":"ok"/, 'in order')

  // Each /metrics request rendered the whole registry at once: now the connection closes.
  const flood = await open(g.healthUrl)
  let answers = 0
  flood.on('data', (chunk: Buffer) => { answers += (chunk.toString('latin1').match(/HTTP\/1\.1 200/g) ?? []).length })
  flood.on('error', () => {})
  flood.write(Array.from({ length: 2000 }, () => get('/metrics')).join(''))
  await eventually(() => flood.destroyed || flood.readableEnded, { message: 'the health listener closes the connection' })
  assert.ok(answers <= 33, `${answers} scrapes answered for one connection`)
})
