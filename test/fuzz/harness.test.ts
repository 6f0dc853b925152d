// The fuzz harness's time limit: a base plus an allowance per KiB of input, so a linear parser's
// large inputs pass on a slow machine while a quadratic one still fails. The targets here spin
// for a set CPU time that depends on their input's size: CPU time, not wall-clock time, because
// the harness counts the smaller of the two, and on a busy machine a wall-clock spin gets less
// CPU time than it asked for (a quadratic target could then pass).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { runTarget, type FuzzTarget, type RunOptions } from './harness.ts'

/** Spins until the process has used ms more milliseconds of CPU time. */
function spin (ms: number): void {
  const from = process.cpuUsage()
  for (;;) {
    const { user, system } = process.cpuUsage(from)
    if ((user + system) / 1000 >= ms) return
  }
}

function spinning (name: string, msFor: (kib: number) => number): FuzzTarget<number> {
  return {
    name,
    covers: `spins for a time that grows with the input (${name})`,
    arbitrary: fc.constantFrom(1024, 64 * 1024),
    async: false,
    exec: bytes => spin(msFor(bytes / 1024)),
    show: bytes => `${bytes} bytes`,
    size: bytes => bytes
  }
}

const options: RunOptions = { runs: 6, seed: 1, timeLimitMs: 10, timePerKibMs: 1, retimes: 1, heapEvery: 1_000, heapLimitBytes: 64 << 20 }

test('fuzz harness: a linear input over the base limit passes within its allowance per KiB', async () => {
  // 64 KiB: 19 ms, over the 10 ms base, within 10 + 64 ms.
  const report = await runTarget(spinning('linear', kib => 0.3 * kib), options)
  assert.equal(report.failure, null)
  assert.ok(report.maxMs > options.timeLimitMs, `the slowest input took ${report.maxMs} ms: not over the base limit, so the allowance was not tested`)
  assert.equal(report.maxBytes, 64 * 1024)
  assert.equal(report.maxLimitMs, 74)
})

test('fuzz harness: a quadratic input fails, naming its size and its limit', async () => {
  // 1 KiB: 0.05 ms; 64 KiB: 205 ms, far over 10 + 64 ms.
  const report = await runTarget(spinning('quadratic', kib => 0.05 * kib * kib), options)
  assert.match(report.failure ?? '', /one input of 64\.0 KiB took \d+\.\d+ ms .*over its 74\.00 ms limit \(10 ms \+ 1 ms per KiB\)/)
})
