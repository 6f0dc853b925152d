// The contract guard for src/proxy/undici-names.ts: the gate adds the names it sends on every
// forwarded request to undici's table of well-known header names, which undici does not document.
// If an upgrade changes that table or how requests read it, these fail before anything else does.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { errors as undiciErrors } from 'undici'
import { createUpstream } from '../../src/proxy/forward.ts'
import { GATE_HEADER_NAMES, teachUndiciGateHeaders, UNDICI_CHECKED, undiciHeaderTable } from '../../src/proxy/undici-names.ts'

test('the installed undici is the minor version src/proxy/undici-names.ts was checked against', () => {
  const { version } = createRequire(import.meta.url)('undici/package.json') as { version: string }
  const minor = (v: string): string => v.split('.').slice(0, 2).join('.')
  assert.equal(minor(version), minor(UNDICI_CHECKED), `undici ${version}: check src/proxy/undici-names.ts against it (lib/core/request.js processHeader, lib/core/constants.js), then update UNDICI_CHECKED`)
})

test('the gate\'s upstream adds its names to the table; they reach the upstream, and undici still refuses a bad value in them', async t => {
  let seen: IncomingHttpHeaders | null = null
  const server = createServer((req, res) => {
    seen = req.headers
    res.end('{}')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(() => { server.closeAllConnections(); server.close() })
  const upstream = createUpstream({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: 0, headersTimeoutMs: 10_000, bodyTimeoutMs: 10_000 })
  t.after(async () => { await upstream.close() })
  // Making the gate's upstream is what adds them (this file runs in a process of its own).
  for (const name of GATE_HEADER_NAMES) assert.equal(undiciHeaderTable()?.[name], name, name)

  const values = GATE_HEADER_NAMES.map((name, i) => `value-${i}`)
  const answer = await upstream.pool.request({ method: 'GET', path: '/', headers: GATE_HEADER_NAMES.flatMap((name, i) => [name, values[i]!]) })
  await answer.body.text()
  assert.equal(answer.statusCode, 200)
  for (const [i, name] of GATE_HEADER_NAMES.entries()) assert.equal(seen![name], values[i], name)

  // Known names skip the name checks only: a value that would split the request is refused.
  for (const name of GATE_HEADER_NAMES) {
    await assert.rejects(upstream.pool.request({ method: 'GET', path: '/', headers: [name, 'a\r\nx-injected: 1'] }), undiciErrors.InvalidArgumentError, name)
  }
})

test('undici\'s table of well-known names is found, and takes the gate\'s names without losing its own', () => {
  const table = undiciHeaderTable()
  assert.ok(table !== null, 'undici/lib/core/constants.js has no headerNameLowerCasedRecord of the expected shape')
  const before = { ...table }
  assert.equal(teachUndiciGateHeaders(), true)
  assert.equal(teachUndiciGateHeaders(), true, 'idempotent')
  for (const name of GATE_HEADER_NAMES) {
    assert.equal(table[name], name)
    // Only lower-case valid tokens, never a name a client chooses.
    assert.match(name, /^[a-z0-9-]+$/)
  }
  for (const [name, lower] of Object.entries(before)) assert.equal(table[name], lower, name)
  assert.equal(Object.keys(table).length - Object.keys(before).length, GATE_HEADER_NAMES.filter(n => before[n] === undefined).length)
})
