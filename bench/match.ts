// Route-match benchmark (`npm run bench:match`, `--json` for machine-readable output).
//
// Over the generated corpus (test/helpers/corpus.ts), in ns per lookup (median round of each
// child process, then the median of the processes: see CHILD below):
//   a. the gate: canonicalize('/api/v4' + path) then router.match, on the whole corpus;
//   b. raw find-my-way on the catalog routes it can hold as-is (no globs, optional groups or
//      literal suffixes), on the paths generated from those routes' plain variants, and the
//      gate on exactly those paths;
//   c. a linear scan of one anchored RegExp per route variant, first match wins (no
//      canonicalization: the path is already canonical);
//   d. scale: the catalog repeated under ten prefixes (/t0 ... /t9), gate and linear scan.
// `--count` (`npm run bench:match:count`): (b) counted instead of timed, instructions per lookup
// under valgrind's callgrind, the gate and find-my-way each in a process of its own
// (bench/match/count-child.ts): what a busy machine cannot move.

import FindMyWay from 'find-my-way'
import { loadavg } from 'node:os'
import { loadCatalog } from '../src/catalog/load.ts'
import type { CatalogRoute } from '../src/catalog/types.ts'
import { API_PREFIX, canonicalize } from '../src/routing/canonical.ts'
import { Router } from '../src/routing/router.ts'
import { generateCorpus, type CorpusEntry } from '../test/helpers/corpus.ts'
import { callgrindCounts, median, requireCallgrind } from './common.ts'
import { fmwCompatible, internMethod, rawFindMyWay } from './match/raw-find-my-way.ts'
import { oracleVariants } from '../test/helpers/oracle.ts'

const JSON_OUTPUT = process.argv.includes('--json')
// The measurement runs in child processes (`--child`), one after another, and the parent reports
// the median of each ratio over them: a process's JIT state (which code got optimized how, in
// what order) moved the gate / find-my-way ratio by up to 1.7x between runs on a busy 2-core
// machine, more than the rounds within one process did. `--processes n` (default 3).
const CHILD = process.argv.includes('--child')
const processesArg = process.argv.indexOf('--processes')
const PROCESSES = processesArg >= 0 ? Number(process.argv[processesArg + 1]) : 3
const WARMUP_ROUNDS = 3
/** Rounds per child process. */
const ROUNDS = 11
/** Uninstrumented rounds over the lookups before counting (V8 has optimized what it will by then). */
const COUNT_WARM_ROUNDS = 60
const COUNT_WINDOWS = 5
const COUNT_ROUNDS_PER_WINDOW = 2

if (process.argv.includes('--count')) {
  await countInstructions()
  process.exit(0)
}
if (!CHILD) {
  await measureInChildren()
  process.exit(0)
}

interface Lookup { method: string, path: string, target: string }

/**
 * The lookups of `entries`, shaped as a server hands requests over: each target and path a flat
 * string of its own (as node's HTTP parser gives `req.url`; a concatenated one is a tree of
 * pieces that every reader walks), each method an interned literal.
 */
function toLookups (entries: ReadonlyArray<{ method: string, path: string }>): Lookup[] {
  const lookups: Lookup[] = JSON.parse(JSON.stringify(entries.map(e => ({ method: e.method, path: e.path, target: API_PREFIX + e.path }))))
  for (const l of lookups) l.method = internMethod(l.method)
  return lookups
}

// Results are folded into a sink so no lookup can be optimized away.
let sink = 0

interface ChildResult { loadAverage: number[], results: Array<{ name: string, nsPerLookup: number }>, ratios: Record<string, { value: number, target: string }> }

/** Runs the benchmark in PROCESSES children in turn; prints (or writes as JSON) each and the medians. */
async function measureInChildren (): Promise<void> {
  const { execFileSync } = await import('node:child_process')
  const script = new URL(import.meta.url).pathname
  const runs: ChildResult[] = []
  const started = process.hrtime.bigint()
  for (let i = 0; i < PROCESSES; i++) {
    const out = execFileSync(process.execPath, [...process.execArgv, script, '--child', '--json'], { encoding: 'utf8', maxBuffer: 1 << 24 })
    runs.push(JSON.parse(out) as ChildResult)
    if (!JSON_OUTPUT) console.error(`process ${i + 1}/${PROCESSES}: gate / raw find-my-way ${runs[i]!.ratios.gateOverRawFmwSubset!.value.toFixed(2)}`)
  }
  const names = Object.keys(runs[0]!.ratios)
  const ratios = Object.fromEntries(names.map(name => [name, {
    value: Number(median(runs.map(r => r.ratios[name]!.value)).toFixed(3)),
    perProcess: runs.map(r => r.ratios[name]!.value),
    target: runs[0]!.ratios[name]!.target
  }]))
  const results = runs[0]!.results.map((b, k) => ({ name: b.name, nsPerLookup: Number(median(runs.map(r => r.results[k]!.nsPerLookup)).toFixed(1)), perProcess: runs.map(r => Number(r.results[k]!.nsPerLookup.toFixed(1))) }))
  const totalSeconds = Number((Number(process.hrtime.bigint() - started) / 1e9).toFixed(1))
  if (JSON_OUTPUT) {
    console.log(JSON.stringify({ node: process.version, processes: PROCESSES, roundsPerProcess: ROUNDS, timing: 'CPU time (process.cpuUsage), median round per process, median of the processes', loadAverage: loadavg().map(x => Number(x.toFixed(2))), results, ratios, runs, totalSeconds }, null, 2))
    return
  }
  console.log(`node ${process.version}; ${PROCESSES} processes, each ${ROUNDS} rounds after ${WARMUP_ROUNDS} warm-up, CPU time; the median round of each process, then the median of the processes; load average ${loadavg().map(x => x.toFixed(2)).join(' ')}`)
  console.log('')
  console.log(`${'benchmark'.padEnd(44)} ${'ns/lookup'.padStart(10)}  per process`)
  for (const b of results) console.log(`${b.name.padEnd(44)} ${b.nsPerLookup.toFixed(1).padStart(10)}  ${b.perProcess.map(x => x.toFixed(0)).join(' / ')}`)
  console.log('')
  console.log(`${'ratio'.padEnd(44)} ${'median'.padStart(8)}  per process         target`)
  const label: Record<string, string> = {
    gateOverRawFmwSubset: 'gate / raw find-my-way (fmw subset)',
    gateOverLinear: 'gate / linear scan (real catalog)',
    gateLargeOverReal: 'gate x10 / real (prefixed corpus)',
    gateLargeX10CorpusOverReal: 'gate x10 / real (x10 corpus)',
    linearLargeOverReal: 'linear x10 / real (prefixed 1/3 corpus)'
  }
  for (const [name, r] of Object.entries(ratios)) console.log(`${(label[name] ?? name).padEnd(44)} ${r.value.toFixed(2).padStart(8)}  ${r.perProcess.map(x => x.toFixed(2)).join(' / ').padEnd(18)}  ${r.target}`)
  console.log('')
  console.log(`total ${totalSeconds} s`)
}

// ---------------------------------------------------------------------------------------------
// Counted: instructions per lookup of the find-my-way subset (b), the gate against find-my-way.

async function countInstructions (): Promise<void> {
  const { execFileSync, spawn } = await import('node:child_process')
  const { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const root = new URL('..', import.meta.url).pathname
  if (!existsSync(join(root, 'dist/routing/router.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm run bench:match:count does)')
  requireCallgrind('bench:match:count')
  const started = process.hrtime.bigint()
  const routes = loadCatalog().routes
  const fmwRoutes = routes.filter(fmwCompatible)
  const ids = new Set(fmwRoutes.map(r => r.id))
  const lookups = toLookups(generateCorpus(routes).filter(e => e.kind === 'instance' && !e.format && ids.has(e.routeId)))
  const tmp = mkdtempSync(join(tmpdir(), 'jtg-match-count-'))
  try {
    const data = join(tmp, 'lookups.json')
    writeFileSync(data, JSON.stringify({ routes, fmwRoutes, lookups }))
    const perLookup: Record<string, number[]> = {}
    // Every matcher warms at once (one valgrind each), then the windows alternate between them:
    // counts still fall by about 1% a window for a while (V8 goes on optimizing under valgrind,
    // which runs its compiler threads slowly), alike for each, so each window's ratio pairs
    // counts taken at the same point of the drift.
    const modes = ['raw', 'gate']
    const children = modes.map(mode => {
      const child = spawn('valgrind', ['--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${join(tmp, `${mode}.%p`)}`,
        process.execPath, '--expose-gc', '--import', 'tsx', join(root, 'bench/match/count-child.ts'), mode, data, String(COUNT_WARM_ROUNDS)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
      let err = ''
      child.stderr!.on('data', (chunk: Buffer) => { err = (err + chunk.toString()).slice(-4000) })
      const reply = async (): Promise<unknown> => await new Promise((resolve, reject) => {
        const exited = (): void => { reject(new Error(`the ${mode} matcher exited: ${err}`)) }
        child.once('exit', exited)
        child.once('message', m => { child.off('exit', exited); resolve(m) })
      })
      const control = (...command: string[]): void => { execFileSync('callgrind_control', [...command, String(child.pid)], { stdio: 'ignore' }) }
      return { mode, child, reply, control, ready: reply(), windows: [] as number[] }
    })
    process.on('exit', () => { for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGKILL') })
    for (const c of children) {
      await c.ready
      c.control('-i', 'on')
      // Code is translated again once instrumented: one round before counting.
      c.child.send('1')
      await c.reply()
    }
    for (let w = 1; w <= COUNT_WINDOWS; w++) {
      for (const c of children) {
        c.control('-z')
        c.child.send(String(COUNT_ROUNDS_PER_WINDOW))
        await c.reply()
        c.control('-d')
        // One file per thread: <prefix>.<pid>.<dump>-<thread>, thread 01 the main thread.
        const main = readdirSync(tmp).find(f => f === `${c.mode}.${c.child.pid}.${w}-01`)
        if (main === undefined) throw new Error(`${c.mode}: no dump of the main thread for window ${w}`)
        c.windows.push(callgrindCounts(join(tmp, main)).Ir! / (COUNT_ROUNDS_PER_WINDOW * lookups.length))
      }
    }
    for (const c of children) {
      c.child.send('exit')
      await new Promise(resolve => c.child.once('exit', resolve))
      perLookup[c.mode] = c.windows
      if (!JSON_OUTPUT) console.error(`${c.mode}: ${c.windows.map(x => x.toFixed(0)).join(' / ')} instructions per lookup`)
    }
    const gate = median(perLookup.gate!)
    const raw = median(perLookup.raw!)
    const paired = perLookup.gate!.map((x, i) => x / perLookup.raw![i]!)
    const result = {
      node: process.version,
      counting: `instructions of the main thread per lookup (valgrind callgrind), ${COUNT_WARM_ROUNDS} rounds of warm-up, median of ${COUNT_WINDOWS} windows of ${COUNT_ROUNDS_PER_WINDOW} rounds, the two processes' windows alternating; the ratio paired per window`,
      lookups: lookups.length,
      gate: Math.round(gate),
      rawFindMyWay: Math.round(raw),
      windows: perLookup,
      // Paired: the median of each window's ratio.
      gateOverRawFmwSubset: { value: Number(median(paired).toFixed(3)), perWindow: paired.map(r => Number(r.toFixed(3))), target: '<= 1.5' },
      totalSeconds: Number((Number(process.hrtime.bigint() - started) / 1e9).toFixed(1))
    }
    if (JSON_OUTPUT) {
      console.log(JSON.stringify(result, null, 2))
      return
    }
    console.log(`node ${process.version}; ${result.counting}; ${lookups.length} lookups (the find-my-way subset)`)
    console.log('')
    console.log(`${'gate: canonicalize + match'.padEnd(44)} ${String(result.gate).padStart(8)} instructions/lookup`)
    console.log(`${'raw find-my-way'.padEnd(44)} ${String(result.rawFindMyWay).padStart(8)} instructions/lookup`)
    console.log(`${'gate / raw find-my-way (fmw subset)'.padEnd(44)} ${result.gateOverRawFmwSubset.value.toFixed(2).padStart(8)}  per window ${result.gateOverRawFmwSubset.perWindow.map(r => r.toFixed(3)).join(' / ')}  target <= 1.5`)
    console.log('')
    console.log(`total ${result.totalSeconds} s`)
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// Matchers

function gateRunner (router: Router, lookups: readonly Lookup[]): () => void {
  return () => {
    let hits = 0
    for (let i = 0; i < lookups.length; i++) {
      const l = lookups[i]!
      const c = canonicalize(l.method, l.target)
      if (c.kind === 'api' && router.matchRequest(c) !== null) hits++
    }
    sink += hits
  }
}

function routerOnlyRunner (router: Router, lookups: readonly Lookup[]): () => void {
  // The canonical forms the gate's runs compute, computed once: router.matchRequest sees the
  // objects it sees in the gate.
  const requests = lookups.map(l => canonicalize(l.method, l.target)).filter(c => c.kind === 'api')
  return () => {
    let hits = 0
    for (let i = 0; i < requests.length; i++) {
      if (router.matchRequest(requests[i]!) !== null) hits++
    }
    sink += hits
  }
}

function fmwRunner (fmw: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>, lookups: readonly Lookup[]): () => void {
  return () => {
    let hits = 0
    for (let i = 0; i < lookups.length; i++) {
      const l = lookups[i]!
      if (fmw.find(l.method as FindMyWay.HTTPMethod, l.path) !== null) hits++
    }
    sink += hits
  }
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** One anchored RegExp per route variant, grouped by method, in catalog and variant order. */
function linearTable (routes: readonly CatalogRoute[]): Map<string, RegExp[]> {
  const table = new Map<string, RegExp[]>()
  for (const route of routes) {
    for (const variant of oracleVariants(route.pattern)) {
      const body = variant.tokens.map(t =>
        t.kind === 'static'
          ? escapeRegExp(t.text)
          : t.kind === 'param'
            ? (t.dots ? '([^/]+)' : '([^/.]+)') + escapeRegExp(t.suffix)
            : escapeRegExp(t.prefix) + '(.+?)').join('/')
      if (!table.has(route.method)) table.set(route.method, [])
      table.get(route.method)!.push(new RegExp(`^/${body}$`))
    }
  }
  return table
}

function linearRunner (table: Map<string, RegExp[]>, lookups: readonly Lookup[]): () => void {
  const none: RegExp[] = []
  return () => {
    let hits = 0
    for (let i = 0; i < lookups.length; i++) {
      const l = lookups[i]!
      const list = table.get(l.method) ?? none
      for (let j = 0; j < list.length; j++) {
        if (list[j]!.exec(l.path) !== null) { hits++; break }
      }
    }
    sink += hits
  }
}

// ---------------------------------------------------------------------------------------------
// Timing: rounds of all benchmarks are interleaved, so drift (thermal, GC, other load) hits
// each one alike; the median round is reported. Each round is timed in CPU time of this process
// (process.cpuUsage, user + system), not wall time: on a busy machine the wall clock also counts
// the time other processes held the core.

interface Bench { name: string, lookups: number, run: () => void, samples: number[] }

function measureAll (benches: Bench[]): void {
  for (let r = 0; r < WARMUP_ROUNDS; r++) for (const b of benches) b.run()
  for (let r = 0; r < ROUNDS; r++) {
    for (const b of benches) {
      const start = process.cpuUsage()
      b.run()
      const used = process.cpuUsage(start)
      b.samples.push((used.user + used.system) * 1000 / b.lookups)
    }
  }
}

// ---------------------------------------------------------------------------------------------

const started = process.hrtime.bigint()
const routes = loadCatalog().routes
const corpus: CorpusEntry[] = generateCorpus(routes)
// Mounted as the gate mounts it (src/gate/server.ts): requests are matched by their whole path.
const router = Router.compile(routes, { mount: API_PREFIX })
const all = toLookups(corpus)

// b. find-my-way subset.
const subsetRoutes = routes.filter(fmwCompatible)
const subsetIds = new Set(subsetRoutes.map(r => r.id))
const subset = toLookups(corpus.filter(e => e.kind === 'instance' && !e.format && subsetIds.has(e.routeId)))
const { fmw, renamed } = rawFindMyWay(subsetRoutes)

// c. linear scan.
const linear = linearTable(routes)
const variantCount = [...linear.values()].reduce((n, list) => n + list.length, 0)

// d. scale: ten copies of the catalog under /t0 ... /t9, with distinct ids.
const COPIES = 10
const large: CatalogRoute[] = []
for (let k = 0; k < COPIES; k++) {
  for (const route of routes) large.push({ ...route, id: `t${k}_${route.id}`, pattern: `/t${k}${route.pattern}` })
}
const compileStart = process.hrtime.bigint()
const largeRouter = Router.compile(large, { mount: API_PREFIX })
const largeCompileMs = Number(process.hrtime.bigint() - compileStart) / 1e6
const largeLinear = linearTable(large)
// Every corpus path under every prefix (the gate) ...
const largeAll = toLookups(corpus.flatMap(e => Array.from({ length: COPIES }, (_, k) => ({ method: e.method, path: `/t${k}${e.path}` }))))
// ... and each corpus path once, under prefix t(i mod 10): same paths, same count and order as the
// real corpus, so large/real compares like with like (the x10 corpus looks every path up ten
// times in a row, which flatters caches).
const prefixed = toLookups(corpus.map((e, i) => ({ method: e.method, path: `/t${i % COPIES}${e.path}` })))
// The linear scan of the x10 catalog costs ~0.1 ms per lookup: it runs on every third path only,
// and so does the linear baseline it is compared with.
const linearSample = toLookups(corpus.filter((_, i) => i % 3 === 0))
const linearSampleLarge = toLookups(corpus.filter((_, i) => i % 3 === 0).map((e, j) => ({ method: e.method, path: `/t${j % COPIES}${e.path}` })))

const benches: Bench[] = []
const bench = (name: string, lookups: readonly Lookup[], run: () => void): Bench => {
  const b = { name, lookups: lookups.length, run, samples: [] }
  benches.push(b)
  return b
}
const gate = bench('gate: canonicalize + match, corpus', all, gateRunner(router, all))
bench('  router.match only, corpus', all, routerOnlyRunner(router, all))
const gateSubset = bench('gate: canonicalize + match, fmw subset', subset, gateRunner(router, subset))
bench('  router.match only, fmw subset', subset, routerOnlyRunner(router, subset))
const raw = bench('raw find-my-way, fmw subset', subset, fmwRunner(fmw, subset))
const lin = bench('linear RegExp scan, corpus', all, linearRunner(linear, all))
const linSample = bench('linear RegExp scan, 1/3 corpus', linearSample, linearRunner(linear, linearSample))
const gateLarge = bench('gate, x10 catalog, x10 corpus', largeAll, gateRunner(largeRouter, largeAll))
const gatePrefixed = bench('gate, x10 catalog, prefixed corpus', prefixed, gateRunner(largeRouter, prefixed))
const linLarge = bench('linear, x10 catalog, prefixed 1/3 corpus', linearSampleLarge, linearRunner(largeLinear, linearSampleLarge))

measureAll(benches)

const ns = (b: Bench): number => median(b.samples)
const ratios = {
  // Paired: per round, the two measured back to back, then the median round (steadier than the
  // ratio of the two medians when the machine's speed moves between rounds).
  gateOverRawFmwSubset: { value: median(gateSubset.samples.map((x, i) => x / raw.samples[i]!)), target: '<= 1.5' },
  gateOverLinear: { value: ns(gate) / ns(lin), target: '< 1' },
  gateLargeOverReal: { value: ns(gatePrefixed) / ns(gate), target: '<= 1.5' },
  gateLargeX10CorpusOverReal: { value: ns(gateLarge) / ns(gate), target: '(info)' },
  linearLargeOverReal: { value: ns(linLarge) / ns(linSample), target: '>= 10 (expected)' }
}
const totalSeconds = Number(process.hrtime.bigint() - started) / 1e9

const result = {
  node: process.version,
  loadAverage: loadavg().map(x => Number(x.toFixed(2))),
  timing: 'CPU time (process.cpuUsage), median of the rounds',
  rounds: ROUNDS,
  warmupRounds: WARMUP_ROUNDS,
  catalog: { routes: routes.length, variants: variantCount, fmwSubsetRoutes: subsetRoutes.length, fmwRenamed: renamed, largeRoutes: large.length, largeCompileMs },
  corpus: { entries: corpus.length, fmwSubset: subset.length, x10: largeAll.length, prefixed: prefixed.length, linearSample: linearSample.length },
  results: benches.map(b => ({ name: b.name.trim(), lookups: b.lookups, nsPerLookup: ns(b), minNs: Math.min(...b.samples), maxNs: Math.max(...b.samples) })),
  ratios: Object.fromEntries(Object.entries(ratios).map(([k, r]) => [k, { value: Number(r.value.toFixed(3)), target: r.target }])),
  totalSeconds: Number(totalSeconds.toFixed(1)),
  sink
}

// A child's result, for the parent (measureInChildren).
console.log(JSON.stringify(result, null, 2))
