// GATE_TRUSTED_PROXIES: single addresses and CIDR ranges (IPv4 and IPv6) in net.BlockList, an
// IPv4-mapped IPv6 peer matched as IPv4; then, through real sockets, what a trusted peer may tell
// the gate (X-Forwarded-*, the forward-auth endpoint's original request, ingress-nginx's
// X-Original-URL) and what an untrusted one may not.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, loadConfig, trustedPeers } from '../../src/config.ts'
import { targetOfUrl } from '../../src/gate/forward-auth.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

test('addresses and CIDR ranges, IPv4 and IPv6; IPv4-mapped peers match as IPv4', () => {
  const trusted = trustedPeers(loadConfig({ GATE_TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.7, fd00::/8, 2001:db8::1, 172.16.0.0/12' }).trustedProxies)
  const cases: Array<[string | undefined, boolean]> = [
    ['10.0.0.1', true], ['10.255.255.255', true], ['11.0.0.1', false], ['9.255.255.255', false],
    ['192.0.2.7', true], ['192.0.2.8', false],
    ['172.31.255.1', true], ['172.32.0.1', false],
    ['fd12:3456::1', true], ['fe80::1', false], ['2001:db8::1', true], ['2001:db8::2', false],
    // How a dual-stack socket reports an IPv4 client.
    ['::ffff:10.1.2.3', true], ['::ffff:11.1.2.3', false], ['::ffff:192.0.2.7', true],
    // Not addresses at all.
    ['', false], [undefined, false], ['localhost', false]
  ]
  for (const [peer, expected] of cases) assert.equal(trusted(peer), expected, String(peer))
  const defaults = trustedPeers(loadConfig({}).trustedProxies)
  assert.deepEqual(['127.0.0.1', '::1', '::ffff:127.0.0.1', '127.0.0.2', '10.0.0.1'].map(defaults), [true, true, true, false, false])
  // Host bits below the prefix are ignored, as net.BlockList does.
  assert.equal(trustedPeers(['10.1.2.3/8'])('10.200.0.1'), true)
  assert.equal(trustedPeers([])('127.0.0.1'), false, 'an empty list trusts nobody')
})

test('an invalid entry stops the start, naming the variable and the entry', () => {
  for (const entry of ['10.0.0.0/33', 'fd00::/129', '10.0.0.0/x', '10.0.0/8', '/8', 'ingress-nginx']) {
    assert.throws(() => loadConfig({ GATE_TRUSTED_PROXIES: `127.0.0.1,${entry}` }),
      (err: Error) => err instanceof ConfigError && err.message.startsWith('GATE_TRUSTED_PROXIES ') && err.message.includes(JSON.stringify(entry)), entry)
  }
})

test('a range trusts a socket peer: X-Forwarded-* and Forwarded kept from 127.0.0.0/8, replaced or dropped from a peer outside the list', async (t) => {
  const inRange = await startTestGate(t, { GATE_TRUSTED_PROXIES: '127.0.0.0/8' })
  const forwarded = 'for=203.0.113.9;host=gitlab.example.com;proto=https'
  const headers = { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-request-id': 'front-proxy-id-1', forwarded }
  const kept = await send(inRange.url, 'GET', '/api/v4/projects/200/packages', headers)
  assert.equal(kept.status, 200)
  const upstream = inRange.seen.at(-1)!
  assert.equal(upstream.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1')
  assert.equal(upstream.headers['x-forwarded-proto'], 'https')
  assert.equal(upstream.headers['x-request-id'], 'front-proxy-id-1')
  assert.equal(upstream.headers.forwarded, forwarded)

  const outside = await startTestGate(t, { GATE_TRUSTED_PROXIES: '10.0.0.0/8,fd00::/8' })
  assert.equal((await send(outside.url, 'GET', '/api/v4/projects/200/packages', headers)).status, 200)
  const replaced = outside.seen.at(-1)!
  assert.equal(replaced.headers['x-forwarded-for'], '127.0.0.1')
  assert.equal(replaced.headers['x-forwarded-proto'], 'http')
  assert.notEqual(replaced.headers['x-request-id'], 'front-proxy-id-1')
  // Rack 3 would take host, scheme and address from it before X-Forwarded-*.
  assert.equal(replaced.headers.forwarded, undefined)
})

test('X-Original-URL: the request target as sent, scheme and authority cut off', () => {
  assert.equal(targetOfUrl('https://gitlab.example.com/api/v4/projects/1/packages?x=1'), '/api/v4/projects/1/packages?x=1')
  // Not normalized: the canonicalize stage must see the dot segment and the encoding.
  assert.equal(targetOfUrl('http://gitlab/api/v4/projects/1/%2e%2e/2/packages'), '/api/v4/projects/1/%2e%2e/2/packages')
  assert.equal(targetOfUrl('HTTP://gitlab:8080'), '/')
  assert.equal(targetOfUrl('/api/v4/projects/1'), null)
  assert.equal(targetOfUrl('ftp://gitlab/api/v4/projects/1'), null)
  assert.equal(targetOfUrl('http://a?b/api/v4/projects/1'), null)
})

test('forward-auth reads ingress-nginx\'s X-Original-URL from a trusted range, refuses it from elsewhere, and refuses headers that disagree', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_TRUSTED_PROXIES: '127.0.0.0/8' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const job = { 'job-token': TOKENS.app }
  // What ingress-nginx's auth-url sends without auth-method: X-Original-URL and X-Original-Method.
  const ingress = (method: string, path: string, extra: Record<string, string> = {}): ReturnType<typeof send> =>
    send(auth, 'GET', '/', { 'x-original-url': `https://gitlab.example.com${path}`, 'x-original-method': method, 'x-sent-from': 'nginx-ingress-controller', ...job, ...extra })
  const allowed = await ingress('GET', '/api/v4/projects/200/packages')
  assert.equal(allowed.status, 200, allowed.text)
  const denied = await ingress('PUT', '/api/v4/projects/200/packages/npm/foo')
  assert.equal(denied.status, 403)
  assert.equal(denied.json().code, 'MISSING_POLICIES')
  assert.equal((await ingress('GET', '/api/v4/projects/300/packages')).json().code, 'NOT_ALLOWLISTED')
  // The target is canonicalized as sent, not as new URL() would resolve it.
  const dotted = await ingress('GET', '/api/v4/projects/300/%2e%2e/200/packages')
  assert.equal(dotted.status, 400)
  assert.equal(dotted.json().code, 'PATH_DOT_SEGMENT')
  // With auth-method set, ingress-nginx sends X-Original-URI too: the same target, accepted.
  assert.equal((await ingress('GET', '/api/v4/projects/200/packages', { 'x-original-uri': '/api/v4/projects/200/packages' })).status, 200)
  // ingress-nginx passes the client's own headers on: one naming another request is refused,
  // whichever header the proxy set.
  for (const extra of [{ 'x-original-uri': '/api/v4/projects/200/packages' }, { 'x-forwarded-uri': '/api/v4/projects/200/packages' }, { 'x-forwarded-method': 'GET' }] as Array<Record<string, string>>) {
    const forged = await ingress('PUT', '/api/v4/projects/300/packages/npm/foo', extra)
    assert.equal(forged.status, 403, JSON.stringify(extra))
    assert.equal(forged.json().code, 'FORWARD_AUTH_UNTRUSTED')
    assert.match(forged.json().message, /name different requests/)
  }
  // Traefik sets X-Forwarded-Method/-Uri and passes the client's headers on too: a client's
  // X-Original-URI once won over Traefik's X-Forwarded-Uri.
  const traefik = { 'x-forwarded-method': 'PUT', 'x-forwarded-uri': '/api/v4/projects/300/packages/npm/foo', ...job }
  assert.equal((await send(auth, 'GET', '/', traefik)).json().code, 'NOT_ALLOWLISTED')
  const smuggled = await send(auth, 'GET', '/', { ...traefik, 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/200/packages' })
  assert.equal(smuggled.status, 403)
  assert.equal(smuggled.json().code, 'FORWARD_AUTH_UNTRUSTED')
  const notUrl = await send(auth, 'GET', '/', { 'x-original-url': '/api/v4/projects/200/packages', ...job })
  assert.equal(notUrl.status, 403)
  assert.equal(notUrl.json().code, 'FORWARD_AUTH_UNTRUSTED')

  const elsewhere = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_TRUSTED_PROXIES: '10.0.0.0/8' })
  const refused = await send(`http://127.0.0.1:${elsewhere.gate.authAddress()!.port}`, 'GET', '/', { 'x-original-url': 'https://gitlab.example.com/api/v4/projects/200/packages', ...job })
  assert.equal(refused.status, 403)
  assert.equal(refused.json().code, 'FORWARD_AUTH_UNTRUSTED')
  assert.equal(g.seen.length + elsewhere.seen.length, 0, 'forward-auth proxies nothing')
})
