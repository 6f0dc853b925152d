// Node's HTTP server leaves every header line after the first 1,000 out of `req.headers` (and
// after about 1,023 out of `req.rawHeaders`) without a word, while its parser still frames the
// body by all of them. In forward-auth the front proxy, not the gate, sends the request to
// GitLab, with every line: nginx passes up to 1,000 of the client's after its own X-Original-*
// lines, Traefik any number. A Content-Type or a Job-Token after the 1,000th line was not seen by
// the decision and reached Rails: a form body's `job_token=` (nginx never sends the body) or the
// header itself went to GitLab unchecked. Reproduced behind the shipped nginx configuration with
// Puma as the upstream: the gate answered 200 NO_JOB_TOKEN and Puma read the form's Content-Type.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

/** Sends `head` (the request line and headers, each line ending CRLF) and `body`; the status and body answered. */
function raw (port: number, head: string, body = ''): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let out = ''
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => { out += d })
    socket.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0)
      resolve({ status, body: out.slice(out.indexOf('\r\n\r\n') + 4) })
    })
    socket.on('error', reject)
    // Connection: close: the gate closes once it answered (a half-closed client is answered nothing).
    socket.write(head + 'Connection: close\r\n\r\n' + body)
  })
}

const padding = (lines: number): string => 'a:1\r\n'.repeat(lines)

test('forward-auth: a Content-Type after the 1,000th header line still marks the body nginx does not send', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const port = g.gate.authAddress()!.port
  // As nginx asks with deploy/nginx/job-token-gate.conf: its own lines first, then the client's.
  // The client's PUT carries `job_token=` in a form body, which GitLab reads and nginx never sends.
  const ask = (lines: number): Promise<{ status: number, body: string }> => raw(port,
    'GET /_job_token_gate HTTP/1.1\r\nHost: job_token_gate_auth\r\n' +
    'X-Original-Method: PUT\r\nX-Original-URI: /api/v4/projects/300/deployments/1\r\nX-Original-Content-Length: 48\r\n' +
    padding(lines) + 'Content-Type: application/x-www-form-urlencoded\r\n')
  for (const lines of [0, 996, 2000]) {
    const answer = await ask(lines)
    assert.equal(answer.status, 403, `${lines} lines before Content-Type: ${answer.body}`)
    assert.equal(JSON.parse(answer.body).code, 'BODY_NOT_VISIBLE')
  }
})

test('forward-auth: a Job-Token after the 1,000th header line is decided', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const port = g.gate.authAddress()!.port
  // Traefik's spelling; it passes every header of the client on.
  for (const lines of [0, 1100, 3000]) {
    const answer = await raw(port, 'GET / HTTP/1.1\r\nHost: gate\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /api/v4/projects/300/packages\r\n' +
      padding(lines) + `Job-Token: ${TOKENS.app}\r\n`)
    assert.equal(answer.status, 403, `${lines} lines before Job-Token: ${answer.body}`)
    assert.equal(JSON.parse(answer.body).code, 'NOT_ALLOWLISTED')
  }
})

test('proxy: every header line is read, decided on and forwarded', async (t) => {
  const g = await startTestGate(t)
  const port = Number(new URL(g.url).port)
  const denied = await raw(port, 'GET /api/v4/projects/300/packages HTTP/1.1\r\nHost: gitlab\r\n' + padding(1100) + `Job-Token: ${TOKENS.app}\r\n`)
  assert.equal(denied.status, 403, denied.body)
  assert.equal(JSON.parse(denied.body).code, 'NOT_ALLOWLISTED')
  const allowed = await raw(port, 'GET /api/v4/projects/200/packages HTTP/1.1\r\nHost: gitlab\r\n' + padding(1100) + `Job-Token: ${TOKENS.app}\r\n`)
  assert.equal(allowed.status, 200, allowed.body)
  assert.equal(g.seen.at(-1)!.headers['job-token'], TOKENS.app, 'the token decided on is the one forwarded')
  assert.equal(g.seen.length, 1)
})
