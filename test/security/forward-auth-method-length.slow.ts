// Finding: a forward-auth check takes the original method from X-Original-Method or
// X-Forwarded-Method, which the front proxy fills with whatever the client put in its request
// line: nginx passes a method of up to its 8 KiB line (`AAAA...AB /api/v4/... HTTP/1.1`), Traefik
// and Envoy one of up to the gate's 16 KiB of headers. The gate kept that text: the decision log's
// repeat window remembers each allowed or no-job-token decision by its method, 20,000 of them for
// 60 s, and the router its matches of paths with a format (`.../packages/5.xml`) by method and
// path, 4,096 of them. Through the shipped nginx configuration, 19,000 requests with made-up
// methods of 7 KB, no token, took a few seconds and held 140 MiB; sent to the decision endpoint with
// 15 KB methods and a path with a format, 19,000 grew the heap by 360 MiB and the process to 700
// MiB: far past the 384 MiB the sidecar overlay gives the gate. No HTTP method is longer than 17 characters: a check
// naming one of more than 32 is refused, 400 FORWARD_AUTH_METHOD_TOO_LONG, before anything keeps it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { heapMiB } from '../helpers/heap.ts'

/** A made-up method of `length` characters, distinct for each `i`, of the letters nginx takes in one. */
const madeUp = (i: number, length: number): string => `M${i.toString(26).toUpperCase().replace(/\d/g, d => 'QRSTUVWXYZ'[Number(d)]!)}_`.padEnd(length, 'A')

test('a forward-auth check naming a method longer than any HTTP method is refused; methods that exist are decided', async t => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const path = '/api/v4/projects/200/packages'
  for (const [header, method] of [['x-original-method', madeUp(1, 33)], ['x-forwarded-method', madeUp(2, 7000)]] as const) {
    const res = await send(auth, 'GET', '/', { [header]: method, [header === 'x-original-method' ? 'x-original-uri' : 'x-forwarded-uri']: path })
    assert.equal(res.status, 400, `${header} of ${method.length} characters`)
    assert.equal(res.json().code, 'FORWARD_AUTH_METHOD_TOO_LONG')
  }
  for (const method of ['GET', 'get', 'BASELINE-CONTROL', 'UPDATEREDIRECTREF', madeUp(3, 32)]) {
    const res = await send(auth, 'GET', '/', { 'x-original-method': method, 'x-original-uri': path })
    assert.equal(res.status, 200, method)
    assert.equal(res.headers['x-job-token-gate-reason'], 'NO_JOB_TOKEN', method)
  }
  const refused = g.logs.filter(l => l.msg === 'decision' && l.reason === 'FORWARD_AUTH_METHOD_TOO_LONG')
  assert.equal(refused.length, 2)
  assert.ok(refused.every(l => l.method === '[other]' && l.status === 400))
})

test('made-up methods of kilobytes are not kept by the gate', async t => {
  // The repeat window on, as by default.
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_DECISION_LOG_REPEAT_WINDOW_MS: '60000' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const check = async (i: number): Promise<void> => {
    // A path with a format, which the router keeps by method too.
    await send(auth, 'GET', '/', { 'x-original-method': madeUp(i, 8000), 'x-original-uri': `/api/v4/projects/200/packages/${i}.xml` })
  }
  for (let i = 0; i < 50; i++) await check(i)
  const before = heapMiB()
  for (let i = 50; i < 1550; i++) await check(i)
  const grown = heapMiB() - before
  // Without the bound: about 25 MiB (1,500 methods of 8 KB, kept by the repeat window and the router).
  assert.ok(grown < 10, `1,500 checks with made-up methods of 8 KB grew the heap by ${grown.toFixed(1)} MiB`)
})
