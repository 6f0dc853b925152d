// Finding: the upstream pool had a fixed size (GATE_UPSTREAM_CONNECTIONS, 128), and a request
// past it waited in undici's queue with no timeout of its own. Anyone who can reach the gate,
// with no token at all, could open 128 uploads that send a few bytes and then nothing: each
// kept its upstream connection until the client timeout (5 minutes of silence), and every other
// client's request, the health of CI included, waited unanswered behind them while
// /-/readiness still said 200. The pool now has no limit by default: a stalled client holds only
// its own connection, as it would in front of Workhorse without the gate.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

/** More than the old default pool size (128). */
const STALLED = 140

function stalledUpload (url: string, path: string, headers: string): Promise<Socket> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname, () => {
      // A declared body of 1 MB, of which 3 bytes come: the upload stalls, the connection stays.
      socket.write(`PUT ${path} HTTP/1.1\r\nHost: gitlab.example\r\n${headers}Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\nabc`)
      resolve(socket)
    })
    socket.on('error', reject)
  })
}

test('stalled uploads of other clients do not hold back a request', async (t) => {
  const g = await startTestGate(t)
  const sockets: Socket[] = []
  t.after(() => { for (const s of sockets) s.destroy() })
  // No token at all (forwarded untouched), and a job token's own project's generic upload.
  for (let i = 0; i < STALLED; i++) {
    sockets.push(await stalledUpload(g.url, i % 2 === 0 ? `/api/v4/projects/1/uploads/${i}` : `/api/v4/projects/100/packages/generic/p/1.0/f${i}.bin`, i % 2 === 0 ? '' : `JOB-TOKEN: ${TOKENS.app}\r\n`))
  }
  // Every stalled upload has reached the upstream pool (on a connection, or queued for one),
  // else the request below could pass only because the stalls had not arrived yet.
  await eventually(async () => {
    const text = await (await fetch(`${g.healthUrl}/metrics`)).text()
    const count = (state: string): number => Number(new RegExp(`^job_token_gate_upstream_pool_requests\\{state="${state}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0)
    return count('running') + count('pending') + count('queued') >= STALLED
  }, { message: `${STALLED} stalled uploads in the upstream pool` })
  const started = performance.now()
  const answer = await fetch(`${g.url}/api/v4/version`, { signal: AbortSignal.timeout(5000) }).then(
    async r => ({ status: r.status, body: await r.text() }),
    (err: Error) => ({ status: 0, body: err.name })
  )
  assert.equal(answer.status, 200, `another client's request must be answered while others stall (got ${answer.body} after ${Math.round(performance.now() - started)} ms)`)
})
