// Finding: a decision request whose body the proxy sends (Traefik's forwardBody, Envoy's
// with_request_body) and whose guard refused it before its end (a second credential early in a
// large JSON or multipart body) was answered on a connection kept alive, with the rest of its body
// never read: nothing read that connection again. The proxy's next decision on it, another
// client's request, got no answer until the gate's keep-alive timeout (75 s) cut the connection,
// then failed. Such a refusal now closes the connection, as every answer to a body not read to
// its end does.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, request } from 'node:http'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

function ask (agent: Agent, port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number, connection: string | undefined, text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: '127.0.0.1', port, method, path, headers: { ...headers, ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) }, timeout: 3000 }, res => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, text }) })
    })
    req.on('timeout', () => { req.destroy(new Error(`${method} ${path}: no answer within 3 s`)) })
    req.on('error', reject)
    req.end(body)
  })
}

test('forward-auth: a body refused before its end closes the connection; the next decision is answered', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'sent' })
  const port = g.gate.authAddress()!.port
  // One kept-alive connection, as a proxy reuses its connections to the decision listener.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.after(() => { agent.destroy() })
  // Over the inspection limit, so it streams through the JSON guard; the second credential first.
  const body = JSON.stringify({ job_token: TOKENS.tools, data: 'x'.repeat(400 * 1024) })
  const refused = await ask(agent, port, 'PUT', '/api/v4/projects/200/packages/npm/@acme%2fhello', { 'job-token': TOKENS.lib, 'content-type': 'application/json' }, body)
  assert.equal(refused.status, 401, refused.text)
  assert.equal(JSON.parse(refused.text).code, 'CREDENTIAL_AMBIGUOUS')
  assert.equal(refused.connection, 'close', 'the rest of the body was not read: the connection is not kept')
  const next = await ask(agent, port, 'GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.app })
  assert.equal(next.status, 200, next.text)
})
