// src/logging.ts: a log line that cannot be written is dropped and counted, never thrown and
// never waited for; the counts are exported as job_token_gate_log_lines_dropped_total.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { createLogOutput, logLinesDropped, type DropCounts } from '../../src/logging.ts'
import { createMetrics } from '../../src/metrics.ts'
import { parseMetrics, total } from '../helpers/metrics.ts'

const epipe = (): NodeJS.ErrnoException => Object.assign(new Error('write EPIPE'), { code: 'EPIPE', errno: -32, syscall: 'write' })
const counters = (): DropCounts => ({ write_error: 0, backlog: 0 })

test('a failed write drops the line and counts it; later lines are dropped without writing', async () => {
  let attempts = 0
  const stream = new Writable({ write (_chunk, _encoding, cb) { attempts++; cb(epipe()) } })
  const dropped = counters()
  const output = createLogOutput(stream, 'stdout', { counters: dropped })
  const logger = pino({ base: null }, output)
  for (let i = 0; i < 3; i++) logger.info({ i }, 'line')
  assert.equal(await output.flush(1000), true, 'nothing left pending')
  assert.deepEqual(dropped, { write_error: 3, backlog: 0 })
  assert.equal(attempts, 1, 'after EPIPE the stream is not written again')
  assert.equal(output.pending(), 0)
})

test('a real broken pipe: the reader (a child process) has exited', async () => {
  const reader = spawn(process.execPath, ['-e', ''], { stdio: ['pipe', 'ignore', 'ignore'] })
  await once(reader, 'exit')
  const dropped = counters()
  const output = createLogOutput(reader.stdin, 'stderr', { counters: dropped })
  const callbacks: Array<string | undefined> = []
  for (let i = 0; i < 5; i++) output.write(`line ${i}\n`, err => { callbacks.push((err as NodeJS.ErrnoException | null | undefined)?.code) })
  assert.equal(await output.flush(5000), true)
  assert.equal(dropped.write_error, 5)
  assert.equal(dropped.backlog, 0)
  await new Promise(resolve => setImmediate(resolve))
  assert.equal(callbacks.length, 5, 'every caller hears of its line')
  assert.ok(callbacks.every(code => code !== undefined), String(callbacks))
})

test('a reader that stops reading: the backlog is bounded, lines past it are dropped, flush does not wait forever', async () => {
  const stream = new Writable({ highWaterMark: 16, write () { /* never completes */ } })
  const dropped = counters()
  const output = createLogOutput(stream, 'stdout', { counters: dropped, maxBacklogBytes: 100 })
  const line = 'x'.repeat(39) + '\n'
  for (let i = 0; i < 10; i++) output.write(line)
  assert.deepEqual(dropped, { write_error: 0, backlog: 7 }, '3 lines fit under 100 bytes of backlog')
  assert.equal(output.pending(), 3)
  assert.equal(await output.flush(20), false)
})

test('a write that throws is counted, not thrown', () => {
  const stream = new Writable({ write (_chunk, _encoding, cb) { cb() } })
  const dropped = counters()
  const output = createLogOutput(stream, 'stdout', { counters: dropped })
  assert.doesNotThrow(() => output.write(42 as unknown as string))
  assert.deepEqual(dropped, { write_error: 1, backlog: 0 })
  assert.equal(output.pending(), 0)
})

test('job_token_gate_log_lines_dropped_total exports the process counts by stream and reason', async () => {
  const metrics = createMetrics()
  const read = async (): Promise<ReturnType<typeof parseMetrics>> => parseMetrics(await metrics.scrape())
  const before = await read()
  for (const stream of ['stdout', 'stderr']) {
    for (const reason of ['write_error', 'backlog']) {
      assert.ok(before.some(s => s.name === 'job_token_gate_log_lines_dropped_total' && s.labels.stream === stream && s.labels.reason === reason), `${stream}/${reason} exported from the start`)
    }
  }
  const start = logLinesDropped().stderr.write_error
  // Default counters: the process's, which the metric reads.
  const output = createLogOutput(new Writable({ write (_chunk, _encoding, cb) { cb(epipe()) } }), 'stderr')
  output.write('a\n')
  output.write('b\n')
  await output.flush(1000)
  assert.equal(logLinesDropped().stderr.write_error, start + 2)
  const after = await read()
  assert.equal(total(after, 'job_token_gate_log_lines_dropped_total', { stream: 'stderr', reason: 'write_error' }), start + 2)
  const names = new Set(after.filter(s => s.name === 'job_token_gate_log_lines_dropped_total').map(s => `${s.labels.stream}/${s.labels.reason}`))
  assert.deepEqual([...names].sort(), ['stderr/backlog', 'stderr/write_error', 'stdout/backlog', 'stdout/write_error'], 'bounded labels')
})
