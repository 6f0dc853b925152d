// An https upstream: the TLS server name (SNI, and the name the certificate is checked against)
// is the upstream URL's host, never the Host header a client sent (which is forwarded as it came),
// and one connection serves requests of every Host (undici reconnects when a request's TLS server
// name changes).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { createServer, type Server } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { startServe } from '../helpers/serve.ts'

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url))

/** A TLS server that records the server name of every handshake that sends one. */
async function tlsUpstream (t: { after: (fn: () => void) => void }): Promise<{ port: number, names: string[], connections: () => number }> {
  const names: string[] = []
  let connections = 0
  const server: Server = createServer({
    key: readFileSync(fixture('localhost.key')),
    cert: readFileSync(fixture('localhost.crt')),
    SNICallback: (name, done) => { names.push(name); done(null) }
  })
  server.on('connection', () => { connections++ })
  server.on('tlsClientError', () => { /* the gate does not trust the test certificate */ })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(() => server.close())
  return { port: (server.address() as AddressInfo).port, names, connections: () => connections }
}

const job = { 'job-token': TOKENS.app }

test('the TLS server name is the upstream\'s host, not the client\'s Host', async (t) => {
  const upstream = await tlsUpstream(t)
  const g = await startTestGate(t, { GATE_UPSTREAM_URL: `https://localhost:${upstream.port}` })
  for (const host of ['gitlab.example.com', 'other.example.net']) {
    const res = await send(g.url, 'GET', '/api/v4/projects/200/packages', { ...job, host })
    // The test certificate is not trusted by the gate: the handshake is refused after the name is sent.
    assert.equal(res.status, 502)
    assert.equal(res.json().code, 'UPSTREAM_UNAVAILABLE')
  }
  assert.ok(upstream.names.length >= 2, `handshakes seen: ${upstream.names.length}`)
  assert.deepEqual(new Set(upstream.names), new Set(['localhost']))
})

test('an upstream given by IP address gets no server name, whatever the Host', async (t) => {
  const upstream = await tlsUpstream(t)
  const g = await startTestGate(t, { GATE_UPSTREAM_URL: `https://127.0.0.1:${upstream.port}` })
  const res = await send(g.url, 'GET', '/api/v4/projects/200/packages', { ...job, host: 'gitlab.example.com' })
  assert.equal(res.status, 502)
  assert.ok(upstream.connections() >= 1, 'the gate connected')
  assert.deepEqual(upstream.names, [], 'no SNI: an IP address is not a server name (RFC 6066)')
})

// The `serve` process from its sources, trusting the test CA through NODE_EXTRA_CA_CERTS.
test('an https upstream: its own server name, a private CA, one connection for every Host', async (t) => {
  const upstream = createHttpsServer({ key: readFileSync(fixture('localhost.key')), cert: readFileSync(fixture('localhost.crt')) }, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ host: req.headers.host, sni: (req.socket as { servername?: string | false }).servername, port: req.socket.remotePort }))
  })
  await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
  t.after(() => upstream.close())
  upstream.keepAliveTimeout = 60_000

  const gate = await startServe(t, {
    NODE_EXTRA_CA_CERTS: fixture('localhost.crt'),
    GATE_UPSTREAM_URL: `https://localhost:${(upstream.address() as AddressInfo).port}`,
    GATE_INSTANCE_TOKEN_PREFIX: ''
  })

  const seen: Array<{ host: string, sni: string, port: number }> = []
  // Requests without a job token are forwarded as they are: no identity or grants needed here.
  for (const host of ['gitlab.example.com', 'other.example.net', 'gitlab.example.com', '203.0.113.7']) {
    const res = await send(gate.api, 'GET', '/api/v4/projects/1/packages', { host })
    assert.equal(res.status, 200, res.text)
    seen.push(res.json())
  }
  assert.deepEqual(seen.map(s => s.host), ['gitlab.example.com', 'other.example.net', 'gitlab.example.com', '203.0.113.7'])
  assert.deepEqual(new Set(seen.map(s => s.sni)), new Set(['localhost']))
  assert.equal(new Set(seen.map(s => s.port)).size, 1, 'one upstream connection for every Host')
})
