// `npm run fuzz`: the long fuzz run over the parsers that decide what the gate authorizes (the
// path canonicalizer, the router, the credential finder, the body scanner, the streaming
// multipart guard, the GraphQL reading of multipart bodies and the GraphQL document reader):
// 1,000,000 generated inputs by default, each within 10 ms plus 2 ms per KiB of input, heap
// bounded.
// The in-suite runs (test/fuzz/suite-run.ts) are the same harness with fewer inputs and a looser
// time limit.
//
//   npm run fuzz                                   # 1,000,000 inputs, random seed (printed)
//   npm run fuzz -- --seed 42 --runs 200000        # reproducible, shorter
//   npm run fuzz -- --target router --seed 42 --path 1234:5:0   # replay one failure
//
// Options: --seed N, --runs N (total over the chosen targets, split by weight), --target a,b,
// --path P (fast-check replay path, with --seed and one --target), --time-limit MS (10),
// --time-per-kib MS (2: added to the limit per KiB of the input; the parsers are linear, so a
// large input may take longer, while a quadratic one still outgrows the allowance),
// --retimes N (4: an input over the limit is timed again and fails only if every run is over),
// --heap-limit MIB (64), --hang-ms MS (10000: the watchdog kills a run stuck on one input).
// Exit status 1 when a target fails.

import { parseArgs } from 'node:util'
import { exposeGc, formatReport, mib, runTarget, Watchdog, type TargetReport } from '../test/fuzz/harness.ts'
import { TARGETS } from '../test/fuzz/targets.ts'

/** Share of the inputs per target: the fast, pure parsers get most. */
const WEIGHTS: Record<string, number> = { canonicalize: 35, router: 25, credentials: 20, 'body-scan': 10, 'multipart-guard': 10, 'graphql-multipart': 5, 'graphql-document': 5 }

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    runs: { type: 'string', default: '1000000' },
    target: { type: 'string' },
    path: { type: 'string' },
    'time-limit': { type: 'string', default: '10' },
    'time-per-kib': { type: 'string', default: '2' },
    retimes: { type: 'string', default: '4' },
    'heap-limit': { type: 'string', default: '64' },
    'hang-ms': { type: 'string', default: '10000' },
    help: { type: 'boolean', default: false }
  }
})

if (values.help) {
  console.log('usage: npm run fuzz -- [--seed N] [--runs N] [--target name,...] [--path P] [--time-limit MS] [--time-per-kib MS] [--retimes N] [--heap-limit MIB] [--hang-ms MS]')
  console.log('targets: ' + TARGETS.map(t => t.name).join(', '))
  process.exit(0)
}

function integer (name: string, text: string, min: number): number {
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < min) {
    console.error(`fuzz: --${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`)
    process.exit(2)
  }
  return n
}

function decimal (name: string, text: string): number {
  const n = Number(text)
  if (text.trim() === '' || !Number.isFinite(n) || n < 0) {
    console.error(`fuzz: --${name} must be a number >= 0, got ${JSON.stringify(text)}`)
    process.exit(2)
  }
  return n
}

const seed = values.seed === undefined ? Date.now() % 2_147_483_647 : integer('seed', values.seed, -2_147_483_648)
const total = integer('runs', values.runs, 1)
const names = values.target === undefined ? TARGETS.map(t => t.name) : values.target.split(',').map(s => s.trim())
const unknown = names.filter(n => !TARGETS.some(t => t.name === n))
if (unknown.length > 0) {
  console.error(`fuzz: unknown target ${unknown.join(', ')}; targets: ${TARGETS.map(t => t.name).join(', ')}`)
  process.exit(2)
}
if (values.path !== undefined && names.length !== 1) {
  console.error('fuzz: --path replays one target: give --target too')
  process.exit(2)
}
const chosen = TARGETS.filter(t => names.includes(t.name))
const weightSum = chosen.reduce((s, t) => s + (WEIGHTS[t.name] ?? 1), 0)
const options = {
  seed,
  timeLimitMs: integer('time-limit', values['time-limit'], 1),
  timePerKibMs: decimal('time-per-kib', values['time-per-kib']),
  retimes: integer('retimes', values.retimes, 0),
  heapEvery: 10_000,
  heapLimitBytes: integer('heap-limit', values['heap-limit'], 1) * (1 << 20),
  progress: true,
  ...(values.path !== undefined ? { path: values.path } : {})
}

const gc = exposeGc()
console.log(`fuzz: seed ${seed}, ${total} inputs over ${chosen.map(t => t.name).join(', ')}; per-input limit ${options.timeLimitMs} ms + ${options.timePerKibMs} ms per KiB (${options.retimes} retimes), heap limit ${mib(options.heapLimitBytes)}${gc === null ? ' (no gc: heap not sampled)' : ''}`)
console.log(`replay any failure with: npm run fuzz -- --seed ${seed} --target <name> [--path <path>]`)

const watchdog = new Watchdog(integer('hang-ms', values['hang-ms'], 100))
const reports: TargetReport[] = []
const started = performance.now()
for (const target of chosen) {
  // A replay runs the one input on its path.
  const runs = values.path !== undefined ? 1 : Math.max(1, Math.round(total * (WEIGHTS[target.name] ?? 1) / weightSum))
  console.log(`\n${target.name}: ${target.covers}`)
  const report = await runTarget(target, { ...options, runs }, watchdog)
  reports.push(report)
  console.log(formatReport(report))
  if (report.maxInput !== '') console.log(`  slowest input: ${report.maxInput.slice(0, 400)}`)
  if (report.failure !== null) console.log(report.failure)
}
await watchdog.close()

const inputs = reports.reduce((s, r) => s + r.runs, 0)
const failed = reports.filter(r => r.failure !== null)
console.log(`\nfuzz: ${inputs} inputs in ${((performance.now() - started) / 1000).toFixed(1)} s (seed ${seed}); max per-input time ${Math.max(...reports.map(r => r.maxMs)).toFixed(2)} ms; ` +
  `${failed.length === 0 ? 'no failures' : `FAILED: ${failed.map(r => r.name).join(', ')}`}`)
process.exit(failed.length > 0 ? 1 : 0)
