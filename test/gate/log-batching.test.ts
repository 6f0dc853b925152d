// Log lines accepted within a few milliseconds are corked and written together: none may be lost
// when the process exits right after writing them, each keeps its own callback, and none waits
// longer than the batch window.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, connect, type Socket } from 'node:net'
import { createLogOutput } from '../../src/logging.ts'

const CHILD = `
import { stdioOutput } from ${JSON.stringify(new URL('../../src/logging.ts', import.meta.url).href)}
const out = stdioOutput('stdout')
for (let i = 0; i < 3; i++) out.write('line ' + i + '\\n')
process.exit(0)
`

/** A TCP socket connected to a local peer, and what the peer has received so far. */
async function connectedSocket (t: TestContext): Promise<{ socket: Socket, peer: Socket, received: () => string }> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'connection')
  const socket = connect((server.address() as { port: number }).port, '127.0.0.1')
  await once(socket, 'connect')
  const [peer] = await accepted as [Socket]
  // A failed assertion leaves the sockets open: closed here, so the run ends instead of hanging.
  t.after(() => { socket.destroy(); peer.destroy(); server.close() })
  let received = ''
  peer.on('data', (d: Buffer) => { received += d.toString() })
  return { socket, peer, received: () => received }
}

/** The chunks written to `socket` from now on (the output keeps the write it finds when created). */
function spyWrites (socket: Socket): string[] {
  const writes: string[] = []
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean
  socket.write = ((chunk: string, ...rest: unknown[]) => { writes.push(String(chunk)); return write(chunk, ...rest) }) as typeof socket.write
  return writes
}

test('lines written just before process.exit() reach a piped stdout', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { stdio: ['ignore', 'pipe', 'inherit'] })
  let text = ''
  child.stdout.on('data', (d: Buffer) => { text += d.toString() })
  const [code] = await once(child, 'exit')
  if (!child.stdout.readableEnded) await once(child.stdout, 'end')
  assert.equal(code, 0)
  assert.equal(text, 'line 0\nline 1\nline 2\n')
})

test('on a socket, a batch\'s lines arrive in order, a line with a callback after those before it, nothing pending', async (t) => {
  const { socket, peer, received } = await connectedSocket(t)
  const writes = spyWrites(socket)
  const output = createLogOutput(socket, 'stdout', { counters: { write_error: 0, backlog: 0 } })
  const called: number[] = []
  for (let i = 0; i < 100; i++) {
    // Every tenth line carries a callback: it is written at once, after the batch before it.
    if (i % 10 === 9) output.write(`l${i}\n`, () => { called.push(i) })
    else output.write(`l${i}\n`)
  }
  assert.equal(output.pending(), 100)
  output.write('l100\n')
  output.write('l101\n')
  assert.equal(writes.length, 20, 'ten batches, ten lines with a callback')
  assert.equal(writes.join(''), Array.from({ length: 100 }, (_, i) => `l${i}\n`).join(''), 'the last two lines wait for their batch')
  assert.equal(await output.flush(5000), true)
  assert.deepEqual(called, [9, 19, 29, 39, 49, 59, 69, 79, 89, 99])
  assert.equal(output.pending(), 0)
  socket.end()
  await once(peer, 'end')
  assert.equal(received(), Array.from({ length: 102 }, (_, i) => `l${i}\n`).join(''))
})

test('a quiet log writes as the turn ends; a busy one holds a batch across turns until its window ends, without flush()', async (t) => {
  const { socket, peer, received } = await connectedSocket(t)
  const writes = spyWrites(socket)
  const output = createLogOutput(socket, 'stdout', { counters: { write_error: 0, backlog: 0 }, batchMs: 50 })
  const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }
  output.write('q\n')
  await turn()
  assert.deepEqual(writes, ['q\n'], 'a quiet log: written as the turn ends')
  for (const l of ['1', '2', '3', '4']) output.write(`${l}\n`)
  await turn()
  assert.deepEqual(writes, ['q\n', '1\n2\n3\n4\n'], 'one batch for the turn')
  writes.length = 0
  output.write('a\n')
  await turn()
  output.write('b\n')
  assert.equal(writes.length, 0, 'after a batch of four lines: still one batch after a turn of the event loop')
  assert.equal(output.pending(), 2)
  const started = Date.now()
  while (!received().endsWith('a\nb\n')) {
    assert.ok(Date.now() - started < 5000, `the batch window ended long ago; received ${JSON.stringify(received())}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  assert.equal(output.pending(), 0)
  assert.deepEqual(writes, ['a\nb\n'], 'one write')
  // A batch over 64 Ki characters goes at once.
  output.write('x'.repeat(70 * 1024) + '\n')
  assert.equal(writes.length, 2, 'a full batch is not held')
  socket.end()
  await once(peer, 'end')
  assert.equal(received().length, 'q\n1\n2\n3\n4\na\nb\n'.length + 70 * 1024 + 1)
})
