// What the gate makes of GitLab's answers, written byte by byte by a raw upstream: hop-by-hop
// headers stay on the gate's side; an answer undici cannot read as one HTTP/1.1 message (the
// shapes of response splitting, an upgrade nobody asked for, headers over the limit) is a 502
// JSON error with its code, never passed on; an answer cut short reaches the client cut, never
// as a shorter body that looks whole.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Socket } from 'node:net'
import { exchange, startRawUpstreamGate, untilClosed } from '../helpers/raw-upstream.ts'
import { TOKENS } from '../helpers/gate.ts'

const REQUEST = `GET /api/v4/projects/200/packages HTTP/1.1\r\nHost: gitlab.example\r\nJob-Token: ${TOKENS.app}\r\n\r\n`
/** The same request on a connection the gate closes after its answer: read without waiting for quiet. */
const LAST_REQUEST = REQUEST.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')

/** Answers written as they are, the connection kept (a well-framed answer) or closed after them. */
const write = (bytes: string, close = false) => (s: Socket) => { close ? s.end(Buffer.from(bytes, 'latin1')) : s.write(Buffer.from(bytes, 'latin1')) }

const UNREADABLE: ReadonlyArray<{ name: string, answer: (s: Socket) => void }> = [
  { name: 'Content-Length twice, equal', answer: write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok') },
  { name: 'Content-Length twice, different', answer: write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\nok') },
  { name: 'Content-Length and Transfer-Encoding', answer: write('HTTP/1.1 200 OK\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n') },
  { name: 'a bare CR in a header value', answer: write('HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: s=1\r\nContent-Length: 2\r\n\r\nok') },
  { name: 'a control character in a header value', answer: write('HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 2\r\n\r\nok') },
  { name: 'a space in a header name', answer: write('HTTP/1.1 200 OK\r\nX A: b\r\nContent-Length: 2\r\n\r\nok') },
  { name: '101 Switching Protocols, never asked for', answer: write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nraw bytes') },
  { name: 'headers over 16 KiB', answer: write(`HTTP/1.1 200 OK\r\nX-Pad: ${'a'.repeat(20_000)}\r\nContent-Length: 2\r\n\r\nok`) },
  { name: 'no HTTP at all', answer: write('SSH-2.0-OpenSSH_9.6\r\n\r\n') }
]

test('an answer undici cannot read as one message: 502 UPSTREAM_UNAVAILABLE, nothing of it passed on', async (t) => {
  let current: (s: Socket) => void = () => {}
  const g = await startRawUpstreamGate(t, s => { current(s) })
  const port = Number(new URL(g.url).port)
  for (const c of UNREADABLE) {
    current = c.answer
    const { text } = await exchange(port, LAST_REQUEST, undefined, undefined, untilClosed)
    assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/, c.name)
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>
    assert.equal(body.code, 'UPSTREAM_UNAVAILABLE', c.name)
    assert.doesNotMatch(text, /set-cookie|x-pad|x-a:|upgrade|raw bytes|\r\n\r\nok/i, `${c.name}: nothing of the answer`)
    const line = g.logs.find(l => l.msg === 'decision' && l.request_id === body.request_id)
    assert.deepEqual([line?.decision, line?.reason, line?.stage, line?.status], ['error', 'UPSTREAM_UNAVAILABLE', 'forward', 502], c.name)
  }
})

test('hop-by-hop headers and the headers Connection names stay with the gate; 1xx answers are not passed on; other bytes pass as sent', async (t) => {
  let current: (s: Socket) => void = () => {}
  const g = await startRawUpstreamGate(t, s => { current(s) })
  const port = Number(new URL(g.url).port)

  current = write('HTTP/1.1 103 Early Hints\r\nLink: </assets/app.js>; rel=preload\r\n\r\n' +
    'HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\nKeep-Alive: timeout=5\r\nX-Internal: secret\r\nUpgrade: h2c\r\nProxy-Authenticate: Basic\r\nProxy-Connection: keep-alive\r\nTrailer: X-Checksum\r\n' +
    'Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Name: caf\xe9\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\nX-Checksum: 1\r\n\r\n')
  const { text } = await exchange(port, REQUEST, undefined, undefined, text => text.includes('\r\n0\r\n\r\n'))
  const head = text.slice(0, text.indexOf('\r\n\r\n'))
  const body = text.slice(head.length + 4)
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/, 'one answer: the hints are not passed on')
  assert.doesNotMatch(head, /link:|x-internal|upgrade|proxy-|trailer|timeout=5/i)
  assert.deepEqual(head.match(/^set-cookie: .*$/gim), ['set-cookie: a=1', 'set-cookie: b=2'])
  assert.match(head, /\r\nx-name: caf\xe9\r\n/, 'a latin-1 byte passes as it came')
  assert.match(head, /\r\nconnection: keep-alive\r\n/i, 'the gate\'s own connection header')
  assert.equal(body, '2\r\n[]\r\n0\r\n\r\n', 'the body, framed by the gate, without the trailer')
})

test('an answer cut short reaches the client cut: a body shorter than its length, or chunks without their end', async (t) => {
  let current: (s: Socket) => void = () => {}
  const g = await startRawUpstreamGate(t, s => { current(s) })
  const port = Number(new URL(g.url).port)

  current = write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly some', true)
  let got = await exchange(port, REQUEST, undefined, undefined, untilClosed)
  assert.ok(got.closed, 'the connection is closed')
  assert.match(got.text, /\r\ncontent-length: 100\r\n/i, 'the length the upstream promised, which the client sees unmet')
  assert.ok(got.text.endsWith('\r\n\r\nonly some'))

  // A chunked answer on a connection the upstream closes: the close does not end the body.
  current = write('HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', true)
  got = await exchange(port, REQUEST, undefined, undefined, untilClosed)
  assert.ok(got.closed, 'the connection is closed')
  assert.ok(got.text.endsWith('\r\n\r\n5\r\nhello\r\n'), 'no last chunk: the client sees the body unfinished')

  // An answer delimited by the close of its connection is whole when the connection closes.
  current = write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it', true)
  got = await exchange(port, REQUEST, undefined, undefined, text => text.endsWith('\r\n0\r\n\r\n'))
  assert.ok(got.text.endsWith('\r\n\r\n9\r\nall of it\r\n0\r\n\r\n'), 'passed on whole, chunked by the gate')

  const lines = g.logs.filter(l => l.msg === 'decision')
  assert.deepEqual(lines.map(l => [l.decision, l.reason, l.status]), [['error', 'UPSTREAM_UNAVAILABLE', 200], ['error', 'UPSTREAM_UNAVAILABLE', 200], ['allow', 'POLICIES_GRANTED', 200]])
})

test('a 304 or 204 that names a Content-Length is passed on whole, on a connection kept open', async (t) => {
  let current: (s: Socket) => void = () => {}
  const g = await startRawUpstreamGate(t, s => { current(s) })
  const port = Number(new URL(g.url).port)
  // RFC 9110 lets a 304 carry the length a 200 would have had; no body follows either answer.
  for (const [status, answer] of [[304, 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 10\r\n\r\n'], [204, 'HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n']] as const) {
    current = write(answer)
    // Until both heads came (a loaded machine answers late), then 300 ms for a body that should not follow.
    const got = await exchange(port, REQUEST + REQUEST, 1500, 300, text => text.split('\r\n\r\n').length > 2)
    assert.equal(got.closed, false, `${status}: the client's connection stays open`)
    const heads = got.text.split('\r\n\r\n').filter(h => h !== '')
    assert.equal(heads.length, 2, `${status}: both pipelined requests answered, no body between them`)
    for (const head of heads) assert.match(head, new RegExp(`^HTTP/1\\.1 ${status} `), String(status))
    // A 304 may say the length a 200 would have had; a 204 carries none (RFC 9110, 8.6).
    for (const head of heads) assert.equal(/\r\ncontent-length: 10\r\n/i.test(head), status === 304, `${status}: ${head}`)
  }
  const lines = g.logs.filter(l => l.msg === 'decision')
  assert.deepEqual(lines.map(l => [l.decision, l.reason, l.status]), [...Array(2).fill(['allow', 'POLICIES_GRANTED', 304]), ...Array(2).fill(['allow', 'POLICIES_GRANTED', 204])])
})
