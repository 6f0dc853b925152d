// Finding: a request a client pipelined behind one the gate answered with `Connection: close` (a
// request without Host, an Expect other than 100-continue, both refused without their bodies being
// read) was decided, and forwarded to GitLab, after that answer had ended the connection's writing
// side: Node hands such a request over with the connection, and its answer went nowhere. The
// client, told the connection closed, retries what it sent after (RFC 9112 9.6: a server that
// sent `close` processes no further request), so an upload or a delete ran twice; Go's server,
// Workhorse's, reads nothing after such an answer. Now such a request never starts, on either
// listener: nothing decided, logged or forwarded for it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { exchange, untilClosed } from '../helpers/raw-upstream.ts'

const AFTER = `GET /api/v4/projects/200/packages?after=1 HTTP/1.1\r\nHost: x\r\nJob-Token: ${TOKENS.app}\r\n\r\n`
const CHUNKED = 'Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'

const CLOSING: ReadonlyArray<readonly [string, string, string]> = [
  ['without Host, a chunked body', `POST /api/v4/projects/200/packages/npm/a HTTP/1.1\r\nJob-Token: ${TOKENS.app}\r\n${CHUNKED}`, 'REQUEST_NOT_PARSEABLE'],
  ['without Host, a Content-Length body', `PUT /api/v4/projects/200/packages/generic/a/1/f HTTP/1.1\r\nJob-Token: ${TOKENS.app}\r\nContent-Length: 3\r\n\r\nabc`, 'REQUEST_NOT_PARSEABLE'],
  ['Expect: foo, a chunked body', `PUT /api/v4/projects/200/packages/generic/a/1/f HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nJob-Token: ${TOKENS.app}\r\n${CHUNKED}`, 'EXPECTATION_NOT_SUPPORTED']
]

for (const listener of ['api', 'forward-auth'] as const) {
  test(`${listener}: a request pipelined behind an answer that closed the connection is never decided nor forwarded`, async (t) => {
    const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
    const port = listener === 'api' ? Number(new URL(g.url).port) : g.gate.authAddress()!.port
    for (const [name, closing, code] of CLOSING) {
      const before = g.logs.length
      const { text, closed } = await exchange(port, closing + AFTER, 1000, 1000, untilClosed)
      assert.ok(closed, `${name}: the connection closes`)
      assert.equal(text.match(/HTTP\/1\.1 \d{3} /g)?.length, 1, `${name}: one answer`)
      assert.match(text, /^HTTP\/1\.1 (400|417) .*connection: close/is, `${name}: the refusal, closing`)
      await eventually(() => g.gate.inFlight() === 0, { message: 'nothing in flight' })
      // What the request after would have done (a decision, a call upstream) has had time to show.
      await sleep(300)
      const lines = g.logs.slice(before).filter(l => l.msg === 'decision')
      assert.deepEqual(lines.map(l => l.reason), [code], `${name}: only the refusal is decided`)
    }
    assert.deepEqual(g.seen.map(s => s.url), [], 'nothing reached GitLab')
  })
}

test('a request pipelined behind an answer that keeps the connection is still answered', async (t) => {
  const g = await startTestGate(t)
  const denied = `GET /api/v4/projects/300/packages HTTP/1.1\r\nHost: x\r\nJob-Token: ${TOKENS.app}\r\n\r\n`
  const { text } = await exchange(Number(new URL(g.url).port), denied + AFTER, 1000, 1000, t => (t.match(/HTTP\/1\.1 \d{3} /g) ?? []).length === 2 && t.endsWith('\r\n0\r\n\r\n'))
  assert.deepEqual(text.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 403', 'HTTP/1.1 200'])
  assert.deepEqual(g.seen.map(s => s.url), ['/api/v4/projects/200/packages?after=1'])
})
