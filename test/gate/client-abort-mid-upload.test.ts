// A client that closes its connection in the middle of an upload (a CI job cancelled while it
// publishes a package): the upstream request is cancelled, and the request is logged once, as
// the client going away. Node's parser reports the connection's early end as an error of its
// own (HPE_INVALID_EOF_STATE), which the gate used to log and count as a request it refused to
// parse (REQUEST_NOT_PARSEABLE, stage `http_parser`, the count of smuggling-shaped requests):
// every cancelled upload was counted as such, beside its own CLIENT_ABORTED line.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

const PATH = '/api/v4/projects/100/packages/generic/tool/1.0/tool.bin'

test('a client that closes mid-upload: the upstream request is cancelled, one CLIENT_ABORTED line, no parser refusal', async (t) => {
  const g = await startTestGate(t)
  const socket = connect(Number(new URL(g.url).port), '127.0.0.1')
  t.after(() => socket.destroy())
  socket.on('error', () => {})
  socket.write(`PUT ${PATH} HTTP/1.1\r\nHost: gitlab.example\r\nJob-Token: ${TOKENS.app}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${8 << 20}\r\n\r\n`)
  socket.write(Buffer.alloc(1 << 20, 0x61))
  await eventually(() => g.gitlab.targets.includes(PATH), { message: 'the upload to reach the upstream' })
  // Closed as a process that exits closes it (a FIN, not a reset).
  socket.end()

  const lines = await eventually(() => {
    const decisions = g.logs.filter(l => l.msg === 'decision')
    return decisions.some(l => l.reason === 'CLIENT_ABORTED') ? decisions : undefined
  }, { message: 'the decision line of the aborted upload' })
  const metrics = async (): Promise<string> => await (await fetch(`${g.healthUrl}/metrics`)).text()
  // The upstream request was cancelled: nothing runs in the pool, and no whole body arrived.
  await eventually(async () => /job_token_gate_upstream_pool_requests\{state="running"\} 0\n/.test(await metrics()), { message: 'the upstream request to end' })
  assert.equal(g.seen.length, 0, 'the upstream never received the whole body')
  assert.deepEqual(lines.map(l => [l.reason, l.stage]), [['CLIENT_ABORTED', 'forward']], 'one line, the client going away')
  assert.doesNotMatch(await metrics(), /reason="REQUEST_NOT_PARSEABLE"/)

  // A request the parser does refuse is still logged and counted as one.
  const bad = connect(Number(new URL(g.url).port), '127.0.0.1')
  t.after(() => bad.destroy())
  bad.on('error', () => {})
  bad.write('GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n')
  await eventually(() => g.logs.some(l => l.reason === 'REQUEST_NOT_PARSEABLE'), { message: 'the parser refusal line' })
})
