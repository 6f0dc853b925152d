// Finding: a client reads a connection's answers in the order of its requests. A CONNECT or a
// request Node's parser refuses, pipelined behind a request GitLab was still answering, was
// answered at once (405 CONNECT_NOT_SUPPORTED, 400 REQUEST_NOT_PARSEABLE) on the connection,
// ahead of that request's answer: the client read the refusal as the answer to its earlier
// request (`GET .../packages` answered 405), and the real answer never came. Such a refusal is
// now logged and the connection closed without an answer the client would misread; a request
// refused on its own (or in its own body) is still answered.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { exchange, untilClosed } from '../helpers/raw-upstream.ts'

const ALLOWED = `GET /api/v4/projects/200/packages HTTP/1.1\r\nHost: x\r\nJob-Token: ${TOKENS.app}\r\n\r\n`

test('a refusal pipelined behind a request still being answered is never read as that request\'s answer', async (t) => {
  const g = await startTestGate(t)
  // GitLab takes its time: the GET's answer has not begun when the next request is refused.
  g.respond = (_req, res) => { setTimeout(() => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}') }, 300) }
  const port = Number(new URL(g.url).port)
  for (const [second, code] of [
    ['CONNECT gitlab.example:443 HTTP/1.1\r\nHost: gitlab.example:443\r\n\r\n', 'CONNECT_NOT_SUPPORTED'],
    ['GET /api/v4/version HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'REQUEST_NOT_PARSEABLE']
  ] as const) {
    const before = g.logs.length
    const { text, closed } = await exchange(port, ALLOWED + second, 1000, 1000, untilClosed)
    assert.ok(closed, `${code}: the connection is closed`)
    assert.doesNotMatch(text, /^HTTP\/1\.1 (400|405) /, `${code}: the GET is not answered with the refusal of the request after it`)
    const lines = g.logs.slice(before).filter(l => l.msg === 'decision')
    assert.ok(lines.some(l => l.reason === code && l.stage === 'http_parser'), `${code}: logged`)
  }
  // On its own, the same requests are answered.
  for (const [alone, status] of [['CONNECT gitlab.example:443 HTTP/1.1\r\nHost: gitlab.example:443\r\n\r\n', 405], ['GET /api/v4/version HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 400]] as const) {
    assert.match((await exchange(port, alone, 1000, 1000, untilClosed)).text, new RegExp(`^HTTP/1\\.1 ${status} `))
  }
})
