// GitLab may answer an upload before reading its body: Workhorse refuses it at its
// pre-authorization (a duplicate generic package, a file over the size limit) and then closes or
// stops reading. undici stops sending the body once the answer is whole, and nothing reads the
// rest from the client: the gate's answer closes the connection. It used to say keep-alive and
// hold the client, whose unread body blocked its socket, until the keep-alive timeout (75 s by
// default); a client that sends its whole body before reading the answer (Python's requests)
// waited that long for GitLab's answer.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { TOKENS, type TestGate } from '../helpers/gate.ts'
import { startRawUpstreamGate } from '../helpers/raw-upstream.ts'

const REFUSED = 'HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{"message":"403 Forbidden"}'

/** Both far longer than the test may take: only the gate closing the connection ends it. */
const LONG_TIMEOUTS = { GATE_CLIENT_KEEPALIVE_TIMEOUT_MS: '120000', GATE_CLIENT_TIMEOUT_MS: '120000' }

/** Starts an upload of 8 MiB, sends 64 KiB of it, and reads the answer until the connection closes. */
function stalledUpload (g: TestGate): Promise<{ text: string, closed: boolean }> {
  return new Promise(resolve => {
    const socket = connect(Number(new URL(g.url).port), '127.0.0.1')
    let text = ''
    // A hang detector only: the gate closes at once, the keep-alive timeout is two minutes.
    const hang = setTimeout(() => { socket.destroy(); resolve({ text, closed: false }) }, 15_000)
    socket.on('data', (chunk: Buffer) => { text += chunk.toString('latin1') })
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(hang); resolve({ text, closed: true }) })
    socket.write(`PUT /api/v4/projects/100/packages/generic/tool/1.0/tool.bin HTTP/1.1\r\nHost: gitlab.example\r\nJob-Token: ${TOKENS.app}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${8 << 20}\r\n\r\n`)
    socket.write(Buffer.alloc(64 << 10, 0x61))
  })
}

for (const [name, answer] of [
  ['keeps the connection and stops reading', (s: Socket) => { s.write(REFUSED); s.pause() }],
  ['closes its connection after the answer (Go\'s net/http)', (s: Socket) => { s.end(REFUSED) }]
] as const) {
  test(`an upstream that answers an upload before reading it (${name}): the client has the answer, then the connection closes`, async (t) => {
    const g = await startRawUpstreamGate(t, answer, LONG_TIMEOUTS)
    const { text, closed } = await stalledUpload(g)
    assert.match(text, /^HTTP\/1\.1 403 Forbidden\r\n/)
    assert.ok(text.endsWith('\r\n\r\n{"message":"403 Forbidden"}'), text)
    assert.match(text, /\r\nconnection: close\r\n/i, 'the answer says the connection ends')
    assert.ok(closed, 'the gate closed the connection after the answer')
    const line = g.logs.find(l => l.msg === 'decision')
    assert.equal(line?.status, 403)
    assert.equal(line?.reason, 'SELF_ACCESS', 'the verdict stands; GitLab refused')
  })
}

test('an answer that comes after the whole body keeps the connection', async (t) => {
  const g = await startRawUpstreamGate(t, (s, _head, body) => {
    let seen = body.length
    const created = (): void => { if (seen === 5) s.write('HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n') }
    s.on('data', (chunk: Buffer) => { seen += chunk.length; created() })
    created()
  }, LONG_TIMEOUTS)
  const socket = connect(Number(new URL(g.url).port), '127.0.0.1')
  t.after(() => socket.destroy())
  const text = await new Promise<string>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => { if (chunk.toString('latin1').includes('\r\n\r\n')) resolve(chunk.toString('latin1')) })
    socket.on('error', reject)
    socket.write(`PUT /api/v4/projects/100/packages/generic/tool/1.0/tool.bin HTTP/1.1\r\nHost: gitlab.example\r\nJob-Token: ${TOKENS.app}\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\nhello`)
  })
  assert.match(text, /^HTTP\/1\.1 201 Created\r\n/)
  assert.match(text, /\r\nconnection: keep-alive\r\n/i)
})
