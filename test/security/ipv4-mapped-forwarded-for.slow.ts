// Finding: a gate listening on an IPv6 address (`GATE_LISTEN=[::]:8181`, as a dual-stack cluster
// sets it) is told an IPv4 peer's address in its IPv4-mapped form (`::ffff:10.244.1.7`), and wrote
// that form into X-Forwarded-For. GitLab compares addresses with Ruby's IPAddr, for which no IPv4
// range holds a mapped address: the ingress controller, trusted by GitLab as an IPv4 range, was an
// untrusted client to it, so GitLab took the controller's address for every client behind it (one
// client's failed sign-ins banned them all, the rate limits were everyone's), and a client's own
// address matched no IPv4 range of a group's allowed addresses. The gate writes an IPv4 peer's
// address in its IPv4 form, as GitLab's own front proxies (nginx, Workhorse) do.
//
// The oracle is a real Puma behind Rails' ActionDispatch::RemoteIp configured as GitLab configures
// it, answering the address GitLab's IP restrictions read.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { rawRequest } from '../helpers/http.ts'
import { gateInFrontOf, REMOTE_IP_APP, requirePuma, startPuma } from '../helpers/puma.ts'
import { railsUnavailable } from '../helpers/rails-routes.ts'
import { requireTool } from '../helpers/require-tool.ts'

interface Seen { readonly remote_ip: string, readonly forwarded_for: string | null }

async function seenBehind (port: number, lines: readonly string[]): Promise<Seen> {
  const answer = await rawRequest(port, lines)
  assert.equal(answer.status, 200, answer.body)
  return JSON.parse(answer.body) as Seen
}

/** A gate on every IPv6 address (and, dual-stack, IPv4's): the test's client on 127.0.0.1 is `::ffff:127.0.0.1` to it. */
const dualStackGate = async (t: TestContext, upstream: string, trustedProxies: string): Promise<number> => await gateInFrontOf(t, upstream, trustedProxies, '[::]:0')

const REQUEST = 'GET /api/v4/projects/1/releases HTTP/1.1'

test('behind a trusted proxy, GitLab takes the client\'s address, not the proxy\'s, when the gate is told the proxy\'s as IPv4-mapped', async (t) => {
  if (!requirePuma(t) || !requireTool(t, railsUnavailable())) return
  const puma = await startPuma(t, REMOTE_IP_APP)
  // 127.0.0.1 is the ingress controller here: trusted by the gate and by GitLab.
  const port = await dualStackGate(t, puma.url, '127.0.0.1')
  const seen = await seenBehind(port, [REQUEST, 'X-Forwarded-For: 203.0.113.5'])
  assert.equal(seen.forwarded_for, '203.0.113.5, 127.0.0.1')
  assert.equal(seen.remote_ip, '203.0.113.5')
})

test('a direct client\'s address reaches GitLab in its IPv4 form, the one a group\'s IPv4 ranges hold', async (t) => {
  if (!requirePuma(t) || !requireTool(t, railsUnavailable())) return
  const puma = await startPuma(t, REMOTE_IP_APP)
  const port = await dualStackGate(t, puma.url, '10.0.0.0/8')
  const seen = await seenBehind(port, [REQUEST])
  assert.equal(seen.forwarded_for, '127.0.0.1')
  assert.equal(seen.remote_ip, '127.0.0.1')
})
