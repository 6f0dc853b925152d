// Forwarding: streaming both ways, Expect: 100-continue, client aborts, upstream failures,
// draining, catalog reload and health.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_CATALOG_DIR } from '../../src/catalog/load.ts'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { generated, send, upload } from '../helpers/http.ts'

const job = { 'job-token': TOKENS.app }

test('an upload streams through byte for byte', async (t) => {
  const g = await startTestGate(t)
  const small = generated(5 * 1024 * 1024 + 17)
  const path = '/api/v4/projects/100/packages/generic/tool/1.0/tool.bin'
  const res = await upload(g.url, path, job, small.stream(), 5 * 1024 * 1024 + 17)
  assert.equal(res.status, 200)
  assert.equal(g.seen.at(-1)!.sha256, small.sha256)
  assert.equal(g.seen.at(-1)!.bytes, 5 * 1024 * 1024 + 17)
})

test('a download streams back byte for byte', async (t) => {
  const g = await startTestGate(t)
  const body = generated(8 * 1024 * 1024 + 3)
  g.respond = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', connection: 'keep-alive', 'x-custom': 'kept' })
    body.stream().pipe(res)
  }
  const url = new URL(g.url)
  const result = await new Promise<{ sha: string, headers: Record<string, unknown> }>((resolve, reject) => {
    request({ host: url.hostname, port: url.port, path: '/api/v4/projects/200/packages/5/package_files/6/download', headers: job }, res => {
      const hash = createHash('sha256')
      res.on('data', (c: Buffer) => hash.update(c))
      res.on('end', () => resolve({ sha: hash.digest('hex'), headers: res.headers }))
    }).on('error', reject).end()
  })
  assert.equal(result.sha, body.sha256)
  assert.equal(result.headers['x-custom'], 'kept')
})

test('Expect: 100-continue is answered once the request is authorized', async (t) => {
  const g = await startTestGate(t)
  const url = new URL(g.url)
  const exchange = (headers: Record<string, string>): Promise<{ continued: boolean, status: number }> => new Promise((resolve, reject) => {
    let continued = false
    const req = request({ host: url.hostname, port: url.port, method: 'PUT', path: '/api/v4/projects/100/packages/generic/tool/1.0/a.txt', headers: { ...headers, expect: '100-continue', 'content-length': '5' } }, res => {
      res.resume()
      res.on('end', () => resolve({ continued, status: res.statusCode ?? 0 }))
    })
    req.on('continue', () => { continued = true; req.end('hello') })
    req.on('error', reject)
    req.flushHeaders()
  })
  const ok = await exchange(job)
  assert.deepEqual(ok, { continued: true, status: 200 })
  assert.equal(g.seen.at(-1)!.bytes, 5)
  assert.equal(g.seen.at(-1)!.headers.expect, undefined, 'Expect is not forwarded')
  const denied = await exchange({ 'job-token': TOKENS.tools, 'content-type': 'application/octet-stream' })
  assert.deepEqual(denied, { continued: false, status: 403 }, 'a denied upload never gets its 100 Continue')
  // A form body must be read to look for a job token in it: 100 Continue comes first.
  const form = await exchange({ 'content-type': 'application/x-www-form-urlencoded' })
  assert.deepEqual(form, { continued: true, status: 200 })
  assert.equal(g.seen.at(-1)!.bytes, 5)
})

test('hop-by-hop headers are not forwarded; X-Forwarded-* are set', async (t) => {
  const g = await startTestGate(t)
  await send(g.url, 'GET', '/api/v4/projects/200/packages', { ...job, connection: 'keep-alive, x-drop-me, x_drop_too', 'x-drop-me': '1', x_drop_too: '1', te: 'trailers', 'x-keep': 'yes', host: 'gitlab.example.com' })
  const seen = g.seen.at(-1)!.headers
  assert.equal(seen['x-drop-me'], undefined)
  assert.equal(seen.x_drop_too, undefined, 'a name Connection gives with \'_\' is dropped too')
  assert.equal(seen.te, undefined)
  assert.equal(seen['x-keep'], 'yes')
  assert.equal(seen['x-forwarded-for'], '127.0.0.1')
  assert.equal(seen['x-forwarded-proto'], 'http')
  assert.equal(seen['x-forwarded-host'], 'gitlab.example.com')
  assert.equal(seen.host, 'gitlab.example.com')
})

test('a header that came on several lines is forwarded on as many lines', async (t) => {
  const g = await startTestGate(t)
  // Node keeps repeated Set-Cookie lines apart (req.headers holds an array): each goes on as its own line.
  const url = new URL(g.url)
  const status = await new Promise<number>((resolve, reject) => {
    request({ host: url.hostname, port: url.port, path: '/api/v4/projects/200/packages', headers: { ...job, 'set-cookie': ['a=1', 'b=2'], 'x-keep': 'yes' } }, res => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    }).on('error', reject).end()
  })
  assert.equal(status, 200)
  const seen = g.seen.at(-1)!.headers
  assert.deepEqual(seen['set-cookie'], ['a=1', 'b=2'])
  assert.equal(seen['x-keep'], 'yes')
})

test('upstream refused → 502, slow → 504, both GitLab-shaped', async (t) => {
  const slow = await startTestGate(t, { GATE_UPSTREAM_HEADERS_TIMEOUT_MS: '300' })
  // An upstream that never answers: the gate's headers timeout (a real timer) is what is tested.
  slow.respond = () => {}
  const timedOut = await send(slow.url, 'GET', '/api/v4/projects/200/packages', job)
  assert.equal(timedOut.status, 504)
  assert.equal(timedOut.json().code, 'UPSTREAM_TIMEOUT')
  assert.match(timedOut.json().message, /^504 Gateway Timeout/)
  // The decision line says what the upstream did; the answer does not.
  const timeoutLine = slow.logs.find(l => l.request_id === timedOut.headers['x-request-id'])
  assert.equal(timeoutLine?.reason, 'UPSTREAM_TIMEOUT')
  assert.match(String(timeoutLine?.upstream_error), /^UND_ERR_HEADERS_TIMEOUT: /)
  assert.equal(timedOut.text.includes('UND_ERR'), false)

  const down = await startTestGate(t)
  down.respond = (req) => { req.socket.destroy() }
  const reset = await send(down.url, 'GET', '/api/v4/projects/200/packages', { 'private-token': 'glpat-x' })
  assert.equal(reset.status, 502)
  assert.equal(reset.json().code, 'UPSTREAM_UNAVAILABLE')
  assert.match(String(down.logs.find(l => l.request_id === reset.headers['x-request-id'])?.upstream_error), /^UND_ERR_SOCKET: /)
})

test('an upstream that fails mid-answer cuts the client and is logged as the failure it was', async (t) => {
  const g = await startTestGate(t)
  // The status line and part of the promised body, then the upstream's connection is lost.
  g.respond = (req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '100000' })
    res.write(Buffer.alloc(1000), () => { setTimeout(() => req.socket.destroy(), 20) })
  }
  const url = new URL(g.url)
  const got = await new Promise<{ status: number, error: string }>((resolve) => {
    request({ host: url.hostname, port: url.port, path: '/api/v4/projects/200/packages/1/package_files/2/download', headers: job }, res => {
      res.resume()
      const done = (error: string): void => resolve({ status: res.statusCode ?? 0, error })
      res.on('error', (err) => done(err.message))
      res.on('end', () => done('ended'))
    }).on('error', (err) => resolve({ status: 0, error: err.message })).end()
  })
  assert.equal(got.status, 200)
  assert.notEqual(got.error, 'ended', 'the client sees a cut answer, not a whole one')
  const line = await eventually(() => g.logs.find(l => l.msg === 'decision'))
  assert.equal(line.decision, 'error')
  assert.equal(line.reason, 'UPSTREAM_UNAVAILABLE')
  assert.equal(line.stage, 'forward')
  assert.equal(line.status, 200, 'the status the client was sent')
  assert.match(String(line.upstream_error), /^UND_ERR_SOCKET: /)
})

test('a client that disconnects cancels the upstream request', async (t) => {
  const g = await startTestGate(t)
  let upstreamClosed: () => void = () => {}
  const closed = new Promise<void>(resolve => { upstreamClosed = resolve })
  g.respond = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    const timer = setInterval(() => res.write(Buffer.alloc(1024)), 10)
    res.on('close', () => { clearInterval(timer); upstreamClosed() })
  }
  const url = new URL(g.url)
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: '/api/v4/projects/200/packages/1/package_files/2/download', headers: job }, res => {
      res.once('data', () => { req.destroy(); resolve() })
    })
    req.on('error', () => {})
    req.on('close', () => resolve())
    setTimeout(() => reject(new Error('no data')), 5000).unref()
    req.end()
  })
  await Promise.race([closed, new Promise((_r, reject) => setTimeout(() => reject(new Error('the upstream response was not cancelled')), 5000).unref())])
})

test('close() drains in-flight requests and refuses new ones', async (t) => {
  const g = await startTestGate(t)
  // The upstream answers when the test says so: after close() has begun.
  let answer: (() => void) | undefined
  g.respond = (_req, res) => { answer = () => res.end('{"slow":true}') }
  const inFlight = send(g.url, 'GET', '/api/v4/projects/200/packages', job)
  const release = await eventually(() => answer, { message: 'the request to reach the upstream' })
  assert.equal(g.gate.inFlight(), 1)
  const closing = g.gate.close(5000)
  assert.equal(g.gate.inFlight(), 1, 'still in flight while draining')
  release()
  const res = await inFlight
  assert.equal(res.status, 200, 'the in-flight request finished')
  assert.equal(res.text, '{"slow":true}')
  await closing
  await assert.rejects(send(g.url, 'GET', '/api/v4/projects/200/packages', job), /ECONNREFUSED|socket hang up|ECONNRESET/)
})

test('catalog reload: atomic, and a bad catalog keeps the last good one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'catalog-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const file of ['routes.json', 'policies.json', 'routes.schema.json', 'policies.schema.json']) cpSync(join(DEFAULT_CATALOG_DIR, file), join(dir, file))
  const g = await startTestGate(t, { GATE_CATALOG_DIR: dir })
  const path = '/api/v4/projects/200/packages'
  assert.equal((await send(g.url, 'GET', path, job)).status, 200)

  // Make "List packages" need admin_packages, which the entry lacks.
  const original = readFileSync(join(dir, 'routes.json'), 'utf8')
  const changed = original.replace('"pattern":"/projects/:id/packages","policies":["read_packages"]', '"pattern":"/projects/:id/packages","policies":["admin_packages"]')
  assert.notEqual(changed, original)
  writeFileSync(join(dir, 'routes.json'), changed)
  const reloaded = g.gate.reloadCatalog()
  assert.equal(reloaded.ok, true)
  assert.equal((await send(g.url, 'GET', path, job)).status, 403)

  writeFileSync(join(dir, 'routes.json'), '{"routes": [}')
  const bad = g.gate.reloadCatalog()
  assert.equal(bad.ok, false)
  assert.match(bad.ok ? '' : bad.error, /routes\.json is not valid JSON/)
  assert.equal((await send(g.url, 'GET', path, job)).status, 403, 'the last good catalog is still in use')
})

test('health: liveness, readiness with its checks, 404 elsewhere', async (t) => {
  const g = await startTestGate(t)
  const live = await send(g.healthUrl, 'GET', '/-/liveness')
  assert.equal(live.status, 200)
  const ready = await send(g.healthUrl, 'GET', '/-/readiness')
  assert.equal(ready.status, 200)
  const checks = ready.json().checks
  assert.equal(checks.catalog.routes, 324)
  assert.equal(checks.store.ok, true)
  assert.equal(checks.upstream.ok, true)
  assert.equal((await send(g.healthUrl, 'GET', '/nope')).status, 404)
  await g.gate.close(0)
})

test('an idle client connection stays open for GATE_CLIENT_KEEPALIVE_TIMEOUT_MS, on the API and forward-auth listeners', async (t) => {
  // Two requests on one keep-alive agent, `idleMs` apart: whether the second went on the first's connection.
  const reused = async (base: string, path: string, idleMs: number): Promise<boolean> => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    t.after(() => agent.destroy())
    const url = new URL(base)
    const ask = (): Promise<boolean> => new Promise((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path, agent, headers: { 'private-token': 'glpat-x', 'x-original-uri': path, 'x-original-method': 'GET' } }, res => {
        res.resume()
        res.on('end', () => resolve(req.reusedSocket))
      }).on('error', reject)
      req.end()
    })
    assert.equal(await ask(), false)
    await new Promise(resolve => setTimeout(resolve, idleMs))
    return await ask()
  }
  const path = '/api/v4/projects/200/packages'
  for (const [timeout, expected] of [['250', false], ['5000', true]] as const) {
    const g = await startTestGate(t, { GATE_CLIENT_KEEPALIVE_TIMEOUT_MS: timeout, GATE_AUTH_LISTEN: '127.0.0.1:0' })
    assert.equal(await reused(g.url, path, 700), expected, `API listener, keep-alive ${timeout} ms`)
    assert.equal(await reused(`http://127.0.0.1:${g.gate.authAddress()!.port}`, '/', 700), expected, `forward-auth listener, keep-alive ${timeout} ms`)
  }
})

test('a client that stalls mid-upload is cut after GATE_CLIENT_TIMEOUT_MS of silence, and the upstream request with it', async (t) => {
  const g = await startTestGate(t, { GATE_CLIENT_TIMEOUT_MS: '400' })
  g.respond = () => {}
  g.gitlab.targets.length = 0
  const url = new URL(g.url)
  const forwarded = (): boolean => g.gitlab.targets.some(target => target.startsWith('/api/v4/projects/100/packages/generic'))
  // The client sends a byte every 50 ms until the upstream has the request, then falls silent:
  // on a loaded machine deciding can take longer than the timeout, and a client silent from
  // the start would be cut before anything was forwarded.
  let silentSince = 0
  const closed = await new Promise<number>((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: 'PUT', path: '/api/v4/projects/100/packages/generic/tool/1.0/t.bin', headers: { ...job, 'content-type': 'application/octet-stream', 'content-length': '1000' } })
    let sent = 0
    const send = (): void => { req.write('1'); sent++; silentSince = performance.now() }
    const trickle = setInterval(() => { if (forwarded() || sent === 999) clearInterval(trickle); else send() }, 50)
    const done = (): void => { clearInterval(trickle); resolve(performance.now() - silentSince) }
    req.on('error', done)
    req.on('response', res => { res.resume(); res.on('close', done) })
    send()
    setTimeout(() => { clearInterval(trickle); reject(new Error('the stalled client was never cut off')) }, 10_000).unref()
  })
  t.diagnostic(`stalled client cut after ${closed.toFixed(0)} ms of silence`)
  assert.ok(forwarded(), 'the upstream saw the request start')
  assert.ok(closed >= 350, `cut too early (${closed.toFixed(0)} ms)`)
  assert.equal(g.seen.length, 0, 'the upstream never received a complete body')
})

test('a request that arrives while the gate drains is refused with GATE_SHUTTING_DOWN, logged and counted', async (t) => {
  const g = await startTestGate(t)
  let answer: (() => void) | undefined
  g.respond = (_req, res) => { answer = () => res.end('{"slow":true}') }
  // One connection: its first request is in flight when the drain begins, its second (pipelined)
  // arrives after that, and is handled once the first is answered (a connection's requests are
  // taken one at a time): the drain waits for it too.
  const socket = connect(Number(new URL(g.url).port), '127.0.0.1')
  t.after(() => socket.destroy())
  let received = ''
  socket.setEncoding('latin1').on('data', (chunk: string) => { received += chunk })
  socket.write('GET /api/v4/projects/200/packages HTTP/1.1\r\nHost: gate\r\nJob-Token: ' + TOKENS.app + '\r\n\r\n')
  const release = await eventually(() => answer, { message: 'the first request to reach the upstream' })
  const closing = g.gate.close(5000)
  socket.write('GET /api/v4/projects/200/packages HTTP/1.1\r\nHost: gate\r\nJob-Token: ' + TOKENS.app + '\r\n\r\n')
  await eventually(() => g.gate.inFlight() === 2, { message: 'the second request waiting its turn' })
  release()
  const line = await eventually(() => g.logs.find(l => l.msg === 'decision' && l.reason === 'GATE_SHUTTING_DOWN'), { message: 'the refusal\'s decision line' })
  await eventually(() => received.includes('GATE_SHUTTING_DOWN'), { message: 'the second answer' })
  assert.match(received, /\{"slow":true\}HTTP\/1\.1 503 [^\r]*\r\n[^]*"code":"GATE_SHUTTING_DOWN"/)
  await closing
  assert.equal(line.status, 503)
  assert.equal(line.decision, 'deny')
  assert.equal(g.seen.length, 1, 'only the first request was forwarded')
})
