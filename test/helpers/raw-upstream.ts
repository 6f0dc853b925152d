// A gate whose upstream writes its answers byte by byte: for what Node's HTTP server would never
// send (a repeated Content-Length, a CR in a header value, an answer before the body, a cut
// body). The gate's own calls (the service token's) are relayed to the fake GitLab of
// test/helpers/gate.ts, which keeps answering identity and project lookups.

import type { TestContext } from 'node:test'
import { connect, createServer, type Socket } from 'node:net'
import { startTestGate, type TestGate } from './gate.ts'

/**
 * `answer` gets each forwarded request as soon as its head has come, with the body bytes that
 * came with it. A request without a body leaves the connection to the next one; after a request
 * with a body, the connection is `answer`'s (it reads the rest itself, or not).
 */
export type RawAnswer = (socket: Socket, head: string, body: Buffer) => void

export async function startRawUpstreamGate (t: TestContext, answer: RawAnswer, env: Record<string, string> = {}): Promise<TestGate> {
  let gitlabPort = 0
  const sockets: Socket[] = []
  const upstream = createServer(from => {
    sockets.push(from)
    from.on('error', () => {})
    let buffered = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk])
      for (let end = buffered.indexOf('\r\n\r\n'); end !== -1; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.subarray(0, end + 4).toString('latin1')
        buffered = buffered.subarray(end + 4)
        if (/^private-token: glpat-service-token\r$/mi.test(head)) {
          from.off('data', onData)
          const to = connect(gitlabPort, '127.0.0.1')
          sockets.push(to)
          to.on('error', () => from.destroy())
          to.write(Buffer.concat([Buffer.from(head, 'latin1'), buffered]))
          from.pipe(to).pipe(from)
          return
        }
        if (/^(content-length: *[1-9]|transfer-encoding:)/mi.test(head)) {
          from.off('data', onData)
          answer(from, head, buffered)
          return
        }
        answer(from, head, Buffer.alloc(0))
      }
    }
    from.on('data', onData)
  })
  await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
  t.after(() => { for (const s of sockets) s.destroy(); upstream.close() })
  const gate = await startTestGate(t, { GATE_UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as { port: number }).port}`, ...env })
  gitlabPort = Number(new URL(gate.gitlab.url).port)
  return gate
}

/** `exchange`'s `complete` for an answer the gate ends by closing the connection. */
export const untilClosed = (): boolean => false

/** How long `exchange` waits for an answer it was told is coming: a hang detector. */
const ANSWER_HANG_MS = 60_000

/**
 * Writes `bytes` on a new connection; what was answered once the gate closes it, or once it has
 * been quiet for `quietMs` (`afterDataMs` once something came). With `complete`, the answer is
 * awaited until `complete(text)` holds, however long a loaded machine takes (ANSWER_HANG_MS at
 * most), and then `afterDataMs` more for anything that should not follow it.
 */
export function exchange (port: number, bytes: string | Buffer, quietMs = 1500, afterDataMs = quietMs, complete?: (text: string) => boolean): Promise<{ text: string, closed: boolean }> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    const wait = (): number => complete === undefined ? (text === '' ? quietMs : afterDataMs) : complete(text) ? afterDataMs : ANSWER_HANG_MS
    let quiet = setTimeout(() => finish(false), wait())
    const finish = (closed: boolean): void => {
      clearTimeout(quiet)
      socket.destroy()
      resolve({ text, closed })
    }
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
      clearTimeout(quiet)
      quiet = setTimeout(() => finish(false), wait())
    })
    socket.on('close', () => finish(true))
    socket.on('error', () => {})
    socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes)
  })
}
