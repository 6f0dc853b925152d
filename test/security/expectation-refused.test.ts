// Finding: a request whose Expect is not 100-continue never reached the gate's handlers: Node
// answered it 417 itself, with an empty body, nothing logged and nothing counted, on both
// listeners. It is still never decided nor forwarded (GitLab's Workhorse answers such a request
// 417 too), but now answered with the gate's JSON error and a decision line, as every other
// request the gate refuses before its stages.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { exchange, untilClosed } from '../helpers/raw-upstream.ts'

test('an Expect other than 100-continue: the gate\'s JSON 417, a decision line, nothing upstream', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  for (const port of [Number(new URL(g.url).port), g.gate.authAddress()!.port]) {
    const before = g.logs.length
    const { text, closed } = await exchange(port, `PUT /api/v4/projects/300/packages/generic/a/1/f HTTP/1.1\r\nHost: x\r\nJob-Token: ${TOKENS.app}\r\nExpect: 200-ok\r\nContent-Length: 3\r\n\r\nabc`, 1000, 1000, untilClosed)
    assert.match(text, /^HTTP\/1\.1 417 /)
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>
    assert.equal(body.code, 'EXPECTATION_NOT_SUPPORTED')
    assert.match(String(body.message), /^417 /)
    assert.ok(closed, 'the unread body is not drained: the connection closes')
    const line = g.logs.slice(before).find(l => l.msg === 'decision')
    assert.ok(line !== undefined, 'a decision line')
    assert.deepEqual([line.request_id, line.method, line.decision, line.reason, line.stage, line.status], [body.request_id, 'PUT', 'deny', 'EXPECTATION_NOT_SUPPORTED', 'http_parser', 417])
    assert.ok(!JSON.stringify(line).includes(TOKENS.app), 'no token logged')
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
  const scrape = await (await fetch(`${g.healthUrl}/metrics`)).text()
  assert.match(scrape, /job_token_gate_requests_total\{decision="deny",reason="EXPECTATION_NOT_SUPPORTED",resource="none",method="PUT"\} 2/)
})
