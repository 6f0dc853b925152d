// The fuzz runs inside the test suites, over the seven parsers that decide what the gate
// authorizes (the long run is `npm run fuzz`, scripts/fuzz.ts): fuzz.test.ts, a third of the
// inputs in `npm test`, and fuzz.slow.ts, all of them in `npm run test:slow`. The per-input limit
// is a hang detector (100 ms plus 20 ms per KiB of input, after retiming: ten times the long
// run's) because the suites share a small machine with other work; the slowest input seen is
// reported for each target. The seed is random unless FUZZ_SEED is set, and is printed, with the
// replay command, on any failure:
//   FUZZ_SEED=123 node scripts/run-tests.mjs test/fuzz/fuzz.test.ts

import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { formatReport, runTarget, Watchdog, type RunOptions } from './harness.ts'
import { TARGETS } from './targets.ts'

/**
 * Inputs per target in the full in-suite run, about 3 s each on a quiet 2-core machine
 * (body-scan also runs the streaming JSON guard on every JSON input). A new seed each run covers
 * new inputs.
 */
const RUNS: Record<string, number> = { canonicalize: 30_000, router: 25_000, credentials: 6_000, 'body-scan': 3_500, 'multipart-guard': 3_000, 'graphql-multipart': 3_000, 'graphql-document': 3_000 }

/**
 * Declares one test per target. `share` scales RUNS; `stopAfterMs` caps a slow or busy target
 * (the run then counts what it did).
 */
export function fuzzTargets (share: number, stopAfterMs: number): void {
  const seed = process.env.FUZZ_SEED !== undefined && process.env.FUZZ_SEED !== '' ? Number(process.env.FUZZ_SEED) : Date.now() % 2_147_483_647
  assert.ok(Number.isSafeInteger(seed), `FUZZ_SEED must be an integer, got ${process.env.FUZZ_SEED}`)
  const base: Omit<RunOptions, 'runs'> = {
    seed,
    timeLimitMs: 100,
    timePerKibMs: 20,
    retimes: 2,
    heapEvery: 2_000,
    heapLimitBytes: 32 << 20,
    stopAfterMs
  }

  const watchdog = new Watchdog(20_000)
  after(() => watchdog.close())

  for (const target of TARGETS) {
    test(`fuzz ${target.name} (seed ${seed}): ${target.covers}`, async t => {
      const report = await runTarget(target, { ...base, runs: Math.ceil((RUNS[target.name] ?? 5_000) * share) }, watchdog)
      t.diagnostic(formatReport(report))
      if (report.maxInput !== '') t.diagnostic(`slowest input: ${report.maxInput.slice(0, 300)}`)
      if (report.failure !== null) assert.fail(report.failure)
      assert.ok(report.runs > 0)
    })
  }
}
