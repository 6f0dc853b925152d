// Finding: GitLab's IP address restrictions read the client's address from ActionDispatch::RemoteIp
// (`action_dispatch.remote_ip`, Gitlab::Middleware::IpRestrictor), which takes it from
// X-Forwarded-For and from `Client-IP`. The gate replaces an untrusted peer's X-Forwarded-For with
// the peer's address, so that such a peer cannot name its own to GitLab, but passed its `Client-IP`
// on: where GitLab trusts the peer's address (its `trusted_proxies`, a pod range say) and the gate
// does not, `Client-IP: <own address>, 6.6.6.6` passed Rails' spoofing check (the list holds an
// address of X-Forwarded-For) and GitLab took 6.6.6.6 for the client. A trusted proxy vouches for
// no `Client-IP` either: ingress-nginx replaces X-Forwarded-For with the client's address but
// passes the client's `Client-IP` on as it came, so a CI job's request through the ingress named
// its address to GitLab the same way. The gate forwards no `Client-IP`, in any spelling Puma reads,
// and in forward-auth the shipped nginx configuration, which forwards the request itself, drops it.
//
// The oracle is a real Puma serving a Rack app behind Rails' ActionDispatch::RemoteIp, configured
// as GitLab configures it (config/initializers/trusted_proxies.rb: loopback plus
// `trusted_proxies`; Rails' spoofing check on), answering the address GitLab's IP restrictions read.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate } from '../helpers/gate.ts'
import { rawRequest, send } from '../helpers/http.ts'
import { needsNginx, startShippedNginx } from '../helpers/nginx.ts'
import { gateInFrontOf, REMOTE_IP_APP, requirePuma, startPuma } from '../helpers/puma.ts'
import { railsUnavailable } from '../helpers/rails-routes.ts'
import { requireTool } from '../helpers/require-tool.ts'

// GitLab trusts loopback (and its configured proxies): here the test's own client, on 127.0.0.1,
// stands for a peer GitLab trusts and the gate does not.

async function remoteIp (port: number, lines: readonly string[]): Promise<{ remote_ip: string, client_ip: string | null }> {
  const answer = await rawRequest(port, lines)
  assert.equal(answer.status, 200, answer.body)
  return JSON.parse(answer.body) as { remote_ip: string, client_ip: string | null }
}

const REQUEST = 'GET /api/v4/projects/1/releases HTTP/1.1'

test('an untrusted peer\'s Client-IP never reaches GitLab, which would take the address it names for the client\'s', async (t) => {
  if (!requirePuma(t) || !requireTool(t, railsUnavailable())) return
  const puma = await startPuma(t, REMOTE_IP_APP)

  // What Rails makes of it without the gate: the address after the peer's own in Client-IP.
  const direct = await remoteIp(Number(new URL(puma.url).port), [REQUEST, 'X-Forwarded-For: 127.0.0.1', 'Client-IP: 127.0.0.1, 6.6.6.6'])
  assert.equal(direct.remote_ip, '6.6.6.6', `ActionDispatch reads Client-IP (Puma ${puma.version})`)

  // 127.0.0.1 is no trusted proxy of the gate's: GitLab sees the peer's address, as with no Client-IP.
  const port = await gateInFrontOf(t, puma.url, '10.0.0.0/8')
  for (const line of ['Client-IP: 127.0.0.1, 6.6.6.6', 'client-ip: 127.0.0.1, 6.6.6.6', 'Client_IP: 127.0.0.1, 6.6.6.6', 'Client-Ip: 6.6.6.6']) {
    const seen = await remoteIp(port, [REQUEST, line])
    assert.equal(seen.remote_ip, '127.0.0.1', line)
    assert.equal(seen.client_ip, null, line)
  }
  assert.equal((await remoteIp(port, [REQUEST])).remote_ip, '127.0.0.1')
})

test('a trusted proxy\'s request carries no Client-IP either: ingress-nginx passes the client\'s on as it came', async (t) => {
  if (!requirePuma(t) || !requireTool(t, railsUnavailable())) return
  const puma = await startPuma(t, REMOTE_IP_APP)
  // 127.0.0.1 is the ingress controller here, trusted by the gate: X-Forwarded-For is the client's
  // address as the controller writes it (one GitLab trusts too), Client-IP the client's own header.
  const port = await gateInFrontOf(t, puma.url, '127.0.0.1')
  const seen = await remoteIp(port, [REQUEST, 'X-Forwarded-For: 127.0.0.1', 'Client-IP: 127.0.0.1, 6.6.6.6'])
  assert.equal(seen.client_ip, null)
  assert.equal(seen.remote_ip, '127.0.0.1')
})

test('forward-auth: the shipped nginx configuration passes no Client-IP to GitLab, in any location', { skip: needsNginx }, async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const { base } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: g.gate.authAddress()!.port, api: g.gate.address().port })
  for (const path of ['/api/v4/projects/200/packages', '/acme/lib.git/info/refs?service=git-upload-pack', '/api/graphql']) {
    const before = g.seen.length
    const graphql = path === '/api/graphql'
    const headers = { 'client-ip': '127.0.0.1, 6.6.6.6', ...(graphql ? { 'content-type': 'application/json' } : {}) }
    const res = await send(base, graphql ? 'POST' : 'GET', path, headers, graphql ? '{"query":"{ currentUser { id } }"}' : undefined)
    assert.equal(res.status, 200, `${path}: ${res.text}`)
    const reached = g.seen.slice(before).find(s => s.url === path)
    assert.ok(reached !== undefined, `${path} reached GitLab`)
    assert.equal(reached.headers['client-ip'], undefined, path)
  }
})
