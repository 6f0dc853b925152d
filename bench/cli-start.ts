// CLI start-up benchmark (`npm run bench:cli-start`, `--json` for machine-readable output):
// wall time of whole `job-token-gate` processes run from the compiled dist/, as a user or a
// probe runs them: `--help` (commander only) and `explain` (catalog load, validation and route
// compilation). The npm script builds first, so a stale dist/ is never measured.
//
// Cases run interleaved, after warm-up runs, so a burst of other work on the machine touches
// every case alike. Compare figures from one quiet run; `hyperfine` gives the same numbers:
//   hyperfine -N --warmup 3 'node bin/job-token-gate.mjs --help'

import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../bin/job-token-gate.mjs', import.meta.url))
const JSON_OUTPUT = process.argv.includes('--json')
const WARMUP_RUNS = 3
const RUNS = 20

const CASES = [
  { name: '--help', args: ['--help'], targetMs: 150 },
  { name: 'explain', args: ['explain', 'GET', '/api/v4/projects/1/packages'], targetMs: 400 }
] as const

if (!existsSync(fileURLToPath(new URL('../dist/cli/main.js', import.meta.url)))) {
  console.error('bench:cli-start: dist/ is missing: run `npm run build` first')
  process.exit(2)
}

function runOnce (args: readonly string[]): number {
  const start = performance.now()
  const run = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' })
  const ms = performance.now() - start
  if (run.status !== 0) throw new Error(`job-token-gate ${args.join(' ')} exited ${String(run.status)}: ${run.stderr}`)
  return ms
}

const samples = new Map<string, number[]>(CASES.map(c => [c.name, []]))
for (let i = 0; i < WARMUP_RUNS + RUNS; i++) {
  for (const c of CASES) {
    const ms = runOnce(c.args)
    if (i >= WARMUP_RUNS) samples.get(c.name)!.push(ms)
  }
}

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
const results = CASES.map(c => {
  const sorted = [...samples.get(c.name)!].sort((a, b) => a - b)
  const median = quantile(sorted, 0.5)
  return { case: c.name, runs: sorted.length, minMs: sorted[0]!, medianMs: median, p90Ms: quantile(sorted, 0.9), targetMs: c.targetMs, withinTarget: median < c.targetMs }
})

if (JSON_OUTPUT) {
  console.log(JSON.stringify({ node: process.version, results }, null, 2))
} else {
  console.log(`job-token-gate start-up from dist/, ${RUNS} runs each (Node ${process.version})`)
  console.log('case       min ms  median ms  p90 ms  target')
  for (const r of results) {
    console.log(`${r.case.padEnd(9)} ${r.minMs.toFixed(0).padStart(7)} ${r.medianMs.toFixed(0).padStart(10)} ${r.p90Ms.toFixed(0).padStart(7)}  < ${r.targetMs} ms ${r.withinTarget ? 'ok' : 'MISSED'}`)
  }
}
