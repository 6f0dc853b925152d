// Finding: an HTTP/1.1 request without a Host header never reached the gate's handlers: Node
// answered it 400 itself (its `requireHostHeader`), a body-less answer with nothing logged and
// nothing counted, on both listeners, so the attempt left no trace. It is still never decided nor
// forwarded (GitLab's Workhorse refuses it too: Go's "missing required Host header"), but now
// answered with the gate's JSON error and a decision line, as every other request the parser
// refuses. HTTP/1.0 needs no Host and is decided as before.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { exchange } from '../helpers/raw-upstream.ts'

const bodyOf = (text: string): Record<string, unknown> => JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>

test('an HTTP/1.1 request without Host: the gate\'s JSON 400, a decision line, a count, nothing upstream', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const ports = [Number(new URL(g.url).port), g.gate.authAddress()!.port]
  for (const port of ports) {
    const before = g.logs.length
    const { text, closed } = await exchange(port, `PUT /api/v4/projects/200/packages/generic/a/1/f HTTP/1.1\r\nJob-Token: ${TOKENS.app}\r\nContent-Length: 3\r\n\r\nabc`, 1000)
    assert.match(text, /^HTTP\/1\.1 400 /)
    const body = bodyOf(text)
    assert.equal(body.code, 'REQUEST_NOT_PARSEABLE')
    assert.match(String(body.message), /^400 /)
    assert.ok(closed, 'the connection closes')
    const line = g.logs.slice(before).find(l => l.msg === 'decision')
    assert.ok(line !== undefined, 'a decision line')
    assert.deepEqual([line.request_id, line.method, line.decision, line.reason, line.stage, line.status], [body.request_id, 'PUT', 'deny', 'REQUEST_NOT_PARSEABLE', 'http_parser', 400])
    assert.ok(!JSON.stringify(line).includes(TOKENS.app), 'no token logged')
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
  const scrape = await (await fetch(`${g.healthUrl}/metrics`)).text()
  assert.match(scrape, /job_token_gate_requests_total\{decision="deny",reason="REQUEST_NOT_PARSEABLE",resource="none",method="PUT"\} 2/)
})

test('an HTTP/1.0 request without Host is decided as any other', async (t) => {
  const g = await startTestGate(t)
  const port = Number(new URL(g.url).port)
  const denied = await exchange(port, `GET /api/v4/projects/300/packages HTTP/1.0\r\nJob-Token: ${TOKENS.app}\r\n\r\n`, 1000)
  assert.match(denied.text, /^HTTP\/1\.1 403 /)
  assert.equal(bodyOf(denied.text).code, 'NOT_ALLOWLISTED')
  const allowed = await exchange(port, `GET /api/v4/projects/200/packages HTTP/1.0\r\nJob-Token: ${TOKENS.app}\r\n\r\n`, 1000)
  assert.match(allowed.text, /^HTTP\/1\.1 200 /)
  assert.deepEqual(g.seen.map(s => s.url), ['/api/v4/projects/200/packages'])
})
