// A 1 GiB upload streams through the gate with flat memory: the body is never buffered.
// Slow (seconds of I/O): run by npm run test:slow.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { generated, upload } from '../helpers/http.ts'

const job = { 'job-token': TOKENS.app }

test('a 1 GiB upload streams through byte for byte and leaves memory flat', async (t) => {
  const g = await startTestGate(t)
  const path = '/api/v4/projects/100/packages/generic/tool/1.0/tool.bin'
  const size = 1024 * 1024 * 1024
  const big = generated(size)
  global.gc?.()
  const before = process.memoryUsage().rss
  let peak = before
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 50)
  const started = performance.now()
  const answer = await upload(g.url, path, job, big.stream(), size)
  clearInterval(sampler)
  const seconds = (performance.now() - started) / 1000
  assert.equal(answer.status, 200)
  assert.equal(g.seen.at(-1)!.bytes, size)
  assert.equal(g.seen.at(-1)!.sha256, big.sha256)
  const grownMiB = (peak - before) / (1024 * 1024)
  t.diagnostic(`1 GiB upload in ${seconds.toFixed(1)} s; RSS grew by at most ${grownMiB.toFixed(1)} MiB (client, gate and upstream share this process)`)
  assert.ok(grownMiB < 128, `RSS grew by ${grownMiB.toFixed(1)} MiB: the body was buffered`)
})
