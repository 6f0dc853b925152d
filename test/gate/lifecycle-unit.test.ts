// lifecycle.ts: an unexpected failure is a 500 that carries the request's id (in the answer and
// in the error log line), and is counted; a GateError is answered with its own code; drain waits
// for requests in flight, up to its deadline (a timer the test fires by hand).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { errors, GateError } from '../../src/errors.ts'
import { createLifecycle } from '../../src/gate/lifecycle.ts'
import { GrantsStoreUnavailableError } from '../../src/grants/errors.ts'
import { createMetrics } from '../../src/metrics.ts'
import { send } from '../helpers/http.ts'

test('an unexpected failure: 500 with the request id, logged with it, counted as GATE_INTERNAL_ERROR', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  const metrics = createMetrics()
  const lifecycle = createLifecycle(logger, metrics)
  const server = createServer((req, res) => { lifecycle.track(req, res, 'req-boom-1', Promise.reject(new Error('boom'))) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(() => { server.closeAllConnections(); server.close() })

  const res = await send(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'GET', '/')
  assert.equal(res.status, 500)
  assert.deepEqual(res.json(), { message: '500 Internal Server Error', code: 'GATE_INTERNAL_ERROR', request_id: 'req-boom-1' })
  assert.equal(res.headers['x-request-id'], 'req-boom-1')
  const logged = lines.find(l => l.msg === 'unexpected error')
  assert.equal(logged?.request_id, 'req-boom-1')
  assert.match(await metrics.scrape(), /job_token_gate_requests_total\{[^}]*reason="GATE_INTERNAL_ERROR"[^}]*\} 1/)
  assert.equal(lifecycle.inFlight(), 0)
})

test('a GateError that escapes: answered with its code and status, not as a 500', async (t) => {
  const metrics = createMetrics()
  const lifecycle = createLifecycle(pino({ level: 'silent' }), metrics)
  const server = createServer((req, res) => { lifecycle.track(req, res, 'req-gate-error', Promise.reject(new GateError('UPSTREAM_TIMEOUT'))) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(() => { server.closeAllConnections(); server.close() })
  const res = await send(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'GET', '/')
  assert.equal(res.status, 504)
  assert.deepEqual(res.json(), { message: errors.UPSTREAM_TIMEOUT.message, code: 'UPSTREAM_TIMEOUT', request_id: 'req-gate-error' })
  assert.match(await metrics.scrape(), /job_token_gate_requests_total\{[^}]*reason="UPSTREAM_TIMEOUT"[^}]*\} 1/)
})

test('a GateError with a log message (grants, identity) that escapes: the table\'s message is answered, the cause is logged', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  const lifecycle = createLifecycle(logger, createMetrics())
  const failure = new GrantsStoreUnavailableError('cannot reach Redis (single): ECONNREFUSED 10.9.9.9:6379')
  const server = createServer((req, res) => { lifecycle.track(req, res, 'req-store', Promise.reject(failure)) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(() => { server.closeAllConnections(); server.close() })
  const res = await send(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'GET', '/')
  assert.equal(res.status, 503)
  assert.deepEqual(res.json(), { message: errors.GRANTS_STORE_UNAVAILABLE.message, code: 'GRANTS_STORE_UNAVAILABLE', request_id: 'req-store' })
  assert.match(String((lines.find(l => l.request_id === 'req-store')?.err as { message?: string } | undefined)?.message), /ECONNREFUSED/)
})

test('drain: refuses new work at once, resolves when the last request settles or at the timeout', async () => {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  const deadlines: Array<{ ms: number, fire: () => void }> = []
  const after = (ms: number): Promise<void> => new Promise(resolve => { deadlines.push({ ms, fire: resolve }) })
  const lifecycle = createLifecycle(logger, createMetrics(), { after })
  const fake = { method: 'GET' } as Parameters<typeof lifecycle.track>[0]
  let finish = (): void => {}
  lifecycle.track(fake, {} as Parameters<typeof lifecycle.track>[1], 'r1', new Promise<void>(resolve => { finish = resolve }))
  assert.equal(lifecycle.inFlight(), 1)
  let drained = false
  const drain = lifecycle.drain(60_000).then(() => { drained = true })
  assert.equal(lifecycle.draining(), true)
  await new Promise(resolve => setImmediate(resolve))
  assert.equal(drained, false, 'still in flight')
  finish()
  await drain
  assert.equal(lifecycle.inFlight(), 0)

  assert.equal(lines.length, 0, 'drained in time: nothing to warn about')

  lifecycle.track(fake, {} as Parameters<typeof lifecycle.track>[1], 'r2', new Promise<void>(() => {}))
  let timedOut = false
  const second = lifecycle.drain(50).then(() => { timedOut = true })
  await new Promise(resolve => setImmediate(resolve))
  assert.equal(timedOut, false, 'waits for its deadline')
  assert.equal(deadlines.length, 2)
  assert.equal(deadlines[1]!.ms, 50)
  deadlines[1]!.fire()
  await second
  assert.equal(lifecycle.inFlight(), 1, 'a hung request is left to close()')
  assert.deepEqual(lines.map(l => [l.msg, l.in_flight, l.drain_ms]), [['drain timeout: closing the connections of requests still in flight', 1, 50]])
})
