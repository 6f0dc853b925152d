// Log lines accepted within a few milliseconds are corked and written together: none may be lost
// when the process exits right after writing them, each keeps its own callback, and none waits
// longer than the batch window.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, connect } from 'node:net'
import { createLogOutput } from '../../src/logging.ts'

const CHILD = `
import { stdioOutput } from ${JSON.stringify(new URL('../../src/logging.ts', import.meta.url).href)}
const out = stdioOutput('stdout')
for (let i = 0; i < 3; i++) out.write('line ' + i + '\\n')
process.exit(0)
`

test('lines written just before process.exit() reach a piped stdout', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { stdio: ['ignore', 'pipe', 'inherit'] })
  let text = ''
  child.stdout.on('data', (d: Buffer) => { text += d.toString() })
  const [code] = await once(child, 'exit')
  if (!child.stdout.readableEnded) await once(child.stdout, 'end')
  assert.equal(code, 0)
  assert.equal(text, 'line 0\nline 1\nline 2\n')
})

test('on a socket, one turn\'s lines arrive in order, each callback called, nothing pending', async () => {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'connection')
  const socket = connect((server.address() as { port: number }).port, '127.0.0.1')
  await once(socket, 'connect')
  const [peer] = await accepted as [import('node:net').Socket]
  let received = ''
  peer.on('data', (d: Buffer) => { received += d.toString() })
  const output = createLogOutput(socket, 'stdout', { counters: { write_error: 0, backlog: 0 } })
  const called: number[] = []
  for (let i = 0; i < 100; i++) output.write(`l${i}\n`, () => { called.push(i) })
  assert.ok(socket.writableCorked > 0, 'corked until the turn ends')
  assert.equal(await output.flush(5000), true)
  assert.equal(called.length, 100)
  assert.equal(output.pending(), 0)
  socket.end()
  await once(peer, 'end')
  assert.equal(received, Array.from({ length: 100 }, (_, i) => `l${i}\n`).join(''))
  server.close()
})

test('a batch spans turns of the event loop and is written when its window ends, without flush()', async () => {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'connection')
  const socket = connect((server.address() as { port: number }).port, '127.0.0.1')
  await once(socket, 'connect')
  const [peer] = await accepted as [import('node:net').Socket]
  let received = ''
  peer.on('data', (d: Buffer) => { received += d.toString() })
  const output = createLogOutput(socket, 'stdout', { counters: { write_error: 0, backlog: 0 }, batchMs: 50 })
  output.write('a\n')
  await new Promise(resolve => setImmediate(resolve))
  output.write('b\n')
  assert.ok(socket.writableCorked > 0, 'still one batch after a turn of the event loop')
  const started = Date.now()
  while (received !== 'a\nb\n') {
    assert.ok(Date.now() - started < 5000, `the batch window ended long ago; received ${JSON.stringify(received)}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  assert.equal(socket.writableCorked, 0)
  assert.equal(output.pending(), 0)
  // A batch over 64 KiB goes at once.
  output.write('x'.repeat(70 * 1024) + '\n')
  assert.equal(socket.writableCorked, 0, 'a full batch is not held')
  socket.end()
  await once(peer, 'end')
  assert.equal(received.length, 4 + 70 * 1024 + 1)
  server.close()
})
