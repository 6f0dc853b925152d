// The `serve` process when the reader of its stdout and stderr goes away (a log shipper restarts,
// the process that started it exits): log lines are dropped and counted, requests are still
// answered, and SIGTERM still ends it — drained, or by the deadline when something hangs.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, request } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { finished } from 'node:stream/promises'
import { pathToFileURL } from 'node:url'
import { EXIT_FORCED, SHUTDOWN_MARGIN_MS, WATCHDOG_GRACE_MS } from '../../src/main.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { startServe } from '../helpers/serve.ts'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { scrape, total } from '../helpers/metrics.ts'
import { eventually } from '../helpers/eventually.ts'

/**
 * An upstream that takes requests and never answers them; closed with the test. `requests(path)`
 * counts the requests for one path: serve also calls GitLab on its own at start-up (the instance
 * token prefix from the application settings), so any request at all does not mean the test's
 * has arrived.
 */
async function silentUpstream (t: TestContext): Promise<{ url: string, requests: (path: string) => number }> {
  const paths: string[] = []
  const server = createServer(req => { paths.push(req.url ?? ''); req.resume() })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: path => paths.filter(p => p === path).length }
}

const waitUntil = async (condition: () => boolean): Promise<void> => { await eventually(condition, { timeoutMs: 60_000 }) }

test('SIGTERM ends serve after the readers of its stdout and stderr went away', async (t) => {
  const drainMs = 2000
  const gate = await startServe(t, { GATE_UPSTREAM_URL: 'http://127.0.0.1:1', GATE_DRAIN_TIMEOUT_MS: String(drainMs) })
  await gate.closeReaders()
  // The first line written after this ("SIGTERM: draining") meets the closed pipe.
  const exit = await gate.terminate(10 * (drainMs + SHUTDOWN_MARGIN_MS))
  assert.deepEqual(exit, { code: 0, signal: null }, 'a clean drain exits 0')
})

test('with both readers gone, requests are answered, lost lines are counted, and SIGTERM drains in-flight requests', async (t) => {
  let arrived = 0
  const gitlab = await startFakeGitlab({
    fallback: (req, res) => {
      // Only the proxied requests: serve's own start-up lookups (the instance token prefix) land here too.
      if (req.url === '/api/v4/projects/1/packages') arrived++
      req.resume()
      setTimeout(() => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"slow":true}') }, 600)
    }
  })
  t.after(() => gitlab.close())
  // NODE_DEBUG makes Node write to stderr on every connection, straight to process.stderr.
  const gate = await startServe(t, { GATE_UPSTREAM_URL: gitlab.url, GATE_DRAIN_TIMEOUT_MS: '10000', NODE_DEBUG: 'net' })
  await gate.closeReaders()

  assert.equal((await send(gate.health, 'GET', '/-/liveness')).status, 200)
  const answered = await send(gate.api, 'GET', '/api/v4/projects/1/packages', { 'private-token': 'glpat-x' })
  assert.equal(answered.status, 200, 'answered while every log line fails')
  const { samples } = await scrape(gate.health)
  const dropped = (stream: string, reason: string): number => total(samples, 'job_token_gate_log_lines_dropped_total', { stream, reason })
  assert.ok(dropped('stdout', 'write_error') >= 1, 'the decision line, dropped and counted')
  assert.ok(dropped('stderr', 'write_error') >= 1, "NODE_DEBUG's lines, dropped and counted")
  assert.equal(dropped('stdout', 'backlog') + dropped('stderr', 'backlog'), 0)

  const inFlight = send(gate.api, 'GET', '/api/v4/projects/1/packages', { 'private-token': 'glpat-x' })
  await waitUntil(() => arrived === 2)
  const exited = gate.terminate(10 * (10_000 + SHUTDOWN_MARGIN_MS))
  const res = await inFlight
  assert.equal(res.status, 200, 'the in-flight request finished during the drain')
  assert.equal(res.text, '{"slow":true}')
  assert.deepEqual(await exited, { code: 0, signal: null })
})

for (const readers of ['closed', 'open'] as const) {
  test(`the shutdown deadline ends serve when closing hangs (readers ${readers})`, async (t) => {
    // The job token's introspection call (GET /api/v4/job) never gets an answer: the request is
    // cut at the drain timeout, and closing the introspection pool waits for that call.
    const gitlab = await silentUpstream(t)
    const drainMs = 300
    const gate = await startServe(t, { GATE_UPSTREAM_URL: gitlab.url, GATE_DRAIN_TIMEOUT_MS: String(drainMs), GATE_IDENTITY_TIMEOUT_MS: '600000' })
    const cut = new Promise<string>(resolve => {
      const { hostname, port } = new URL(gate.api)
      request({ host: hostname, port, path: '/api/v4/projects/64/packages', headers: { 'job-token': TOKENS.app } })
        .on('response', res => { resolve(`answered ${String(res.statusCode)}`) })
        .on('error', (err: NodeJS.ErrnoException) => { resolve(err.code ?? err.message) })
        .end()
    })
    await waitUntil(() => gitlab.requests('/api/v4/job') > 0)
    if (readers === 'closed') await gate.closeReaders()

    const exit = await gate.terminate(10 * (drainMs + SHUTDOWN_MARGIN_MS))
    assert.deepEqual(exit, { code: EXIT_FORCED, signal: null }, 'forced by the deadline')
    assert.equal(await cut, 'ECONNRESET', 'the in-flight request was cut at the drain timeout')
    if (readers === 'open') {
      await finished(gate.child.stdout)
      const messages = gate.lines.map(l => l.msg)
      assert.ok(messages.includes('drain timeout: closing the connections of requests still in flight'), messages.join(' | '))
      assert.ok(messages.includes('shutdown deadline passed: exiting'), messages.join(' | '))
    }
  })
}

test('a stuck event loop cannot hold serve either: a thread kills it past the deadline', async (t) => {
  // A module preloaded into serve blocks its main thread for good shortly after SIGTERM, as a
  // synchronous write or a handler that never returns would; a request keeps the drain going.
  const dir = mkdtempSync(join(tmpdir(), 'stuck-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const preload = join(dir, 'stuck.mjs')
  writeFileSync(preload, [
    "import { isMainThread } from 'node:worker_threads'",
    'if (isMainThread) process.on(\'SIGTERM\', () => { setTimeout(() => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0) }, 100) })'
  ].join('\n'))
  const upstream = await silentUpstream(t)
  const drainMs = 300
  const gate = await startServe(t, {
    GATE_UPSTREAM_URL: upstream.url,
    GATE_DRAIN_TIMEOUT_MS: String(drainMs),
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(preload).href}`.trim()
  })
  send(gate.api, 'GET', '/api/v4/projects/1/packages').catch(() => {})
  await waitUntil(() => upstream.requests('/api/v4/projects/1/packages') > 0)
  const exit = await gate.terminate(10 * (drainMs + SHUTDOWN_MARGIN_MS + WATCHDOG_GRACE_MS))
  assert.deepEqual(exit, { code: null, signal: 'SIGKILL' })
})
