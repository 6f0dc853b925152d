// The health listener on its own: probes answer JSON, and a failed /metrics scrape is a 500 like
// every other: JSON, the table's code, and a request id that is on the error's log line.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import { Writable } from 'node:stream'
import { createHealthServer, type HealthSources } from '../../src/gate/health.ts'
import { GATE_REQUEST_ID } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

test('a /metrics scrape that fails answers 500 GATE_INTERNAL_ERROR with the id of its log line', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino(new Writable({ write (chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString())); done() } }))
  const sources = {
    metrics: { contentType: 'text/plain', scrape: async () => { throw new Error('collector broke') } },
    logger,
    store: async () => ({ ok: true }),
    catalog: () => ({ version: 'v', routes: 1 }),
    upstreamUsable: () => true,
    draining: () => false
  } as unknown as HealthSources
  const server = createHealthServer(sources)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>(resolve => server.close(() => resolve())))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const res = await send(url, 'GET', '/metrics')
  assert.equal(res.status, 500)
  const body = res.json()
  assert.equal(body.code, 'GATE_INTERNAL_ERROR')
  assert.match(String(body.request_id), GATE_REQUEST_ID)
  assert.equal(res.headers['x-request-id'], body.request_id)
  const logged = lines.find(l => l.msg === 'metrics scrape failed')
  assert.equal(logged?.request_id, body.request_id)
  assert.equal((await send(url, 'GET', '/-/liveness')).json().status, 'ok', 'the listener lives on')
})
