// Instructions per request (`npm run bench:instructions`): the bare proxy and the gate under the
// loads of bench:e2e, each process run under valgrind's callgrind, which counts the instructions
// it executes. A count does not depend on what else the machine is doing, so two builds measured
// an hour apart, or on a busy machine, compare to 0.5-2%, where CPU time per request
// (bench:e2e) cannot tell 5% from noise. It is not a time: cache misses and the kernel's share are
// not in it (bench/README.md says how the two relate).
//
// Per target: warmed uninstrumented (valgrind runs it about 10 times slower), then `--windows`
// windows of `--requests` requests counted by callgrind; the main thread's count per request is
// the figure (the median window), the other threads' (V8's background compiler and concurrent
// marking) are printed beside it: they move with when the JIT and the GC happen to run.
//
//   --targets bare,allowed,none,denied,fastify,redis   which to measure (default all but redis;
//                                        fastify: @fastify/http-proxy under the bare proxy's load;
//                                        redis: the allowed load on a gate with the Redis store)
//   --windows n, --requests n            windows per target (5) and requests per window (2,100)
//   --warm n                             uninstrumented requests first (60,000)
//   --root dir                           measure the gate of another checkout (its dist/, built)
//   --profile dir                        keep each target's median window as a callgrind file with
//                                        JavaScript functions named (node --perf-basic-prof), and
//                                        print the functions with the most instructions and the
//                                        counts by where the code comes from (the gate, undici...)
//   --cache-sim                          also simulate the caches (callgrind --cache-sim=yes): misses
//                                        per request of the first-level instruction and data caches
//                                        and of the last level, in the median window (slower)
//   --steady                             run the gates with their cache TTLs, the decision log's
//                                        repeat window and the usage flush at an hour: no job
//                                        token is resolved again, no grants read again, no burst
//                                        of repeated decision lines and no usage written while
//                                        counted (bench/README.md, the tenth, twenty-fifth and
//                                        thirty-fourth rounds)
//   --memory-reducer                     leave V8's memory reducer on in the counted processes
//                                        (off by default: below, and bench/README.md's 24th round)
//   --out file.json

import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import autocannon from 'autocannon'
import { callgrindCounts, gateReady, listeningPort, median, requireCallgrind, waitHttp } from './common.ts'
import { benchGateEnv, redisHolding, stateFile, workload, type Req } from './e2e/workload.ts'

const args = process.argv.slice(2)
const option = (name: string): string | null => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] ?? null : null
}
const TARGETS = (option('--targets') ?? 'bare,allowed,none,denied,fastify').split(',')
/**
 * Under callgrind a gate runs some 40 times slower, but its caches expire by the clock: a job
 * token is resolved again every 30 s and a project's grants read every 10 s, so that work falls
 * on some 40 times fewer requests than at full speed. So does the decision log's repeat window
 * (60 s): when it starts again, every job, project and route of the load is logged once more (700
 * lines), and V8 deoptimizes the log's function, optimized while no line was written, until it
 * optimizes it again (--trace-deopt; bench/README.md, twenty-fifth round).
 * So does the usage flush (every 5 s): on the Redis store one script call per accessed project
 * and job project, 100 of them for this load, which at full speed is some 30 instructions per
 * request and under callgrind some 2,000 (bench/README.md, thirty-fourth round).
 * `--steady` keeps that work out of the count: every TTL at an hour, the namespace cache's too,
 * which also bounds how long an identity is kept, and the repeat window and the flush at an hour.
 */
const STEADY = args.includes('--steady')
const STEADY_TTL_MS = String(60 * 60 * 1000)
const WINDOWS = Number(option('--windows') ?? 5)
const REQUESTS = Number(option('--requests') ?? 2100)
// V8 still optimizes a few functions per thousand requests until about 30,000 (--trace-opt), and
// after 21,000 an allowed window could still hold a function's reoptimization (its other threads
// busy compiling); after 60,000 every window ran optimized code (bench/README.md, twelfth round).
const WARM_REQUESTS = Number(option('--warm') ?? 60_000)
const ROOT = new URL('..', import.meta.url).pathname
const GATE_ROOT = resolve(option('--root') ?? ROOT)
const PROFILE = option('--profile')
const CACHE_SIM = args.includes('--cache-sim')
/**
 * V8's memory reducer runs a shrinking mark-compact once a process that has made a mark-compact
 * allocates little for a while, by the clock. Under callgrind, some 40 times slower, the pauses
 * between warming and counting look long to it: a gate (whose start makes a mark-compact, which
 * the bare proxy's does not) had its new space cut to 1-2 MB, which valgrind's slow allocation
 * never grows back, and scavenged 25 times per window of 2,100 requests where it scavenges 3
 * times at full speed, as the bare proxy does under callgrind and at full speed (--trace-gc,
 * bench/README.md). So every counted process runs without it: under steady load at full speed it
 * does not act (no mark-compact in 40,000 requests of either).
 */
const MEMORY_REDUCER = args.includes('--memory-reducer')
const OUT = option('--out') ?? join(tmpdir(), 'job-token-gate-instructions.json')
// Fewer connections than bench:e2e's 32: under valgrind the process is slow enough that 8 keep
// it busy. Batching differs with the connection count, so compare figures of one setting only.
const CONNECTIONS = 8
const TOKENS = 100
const PROJECTS = 10

for (const t of TARGETS) if (!['bare', 'allowed', 'none', 'denied', 'fastify', 'redis'].includes(t)) throw new Error(`unknown target ${t}: bare, allowed, none, denied, fastify or redis`)
if (!(Number.isInteger(WINDOWS) && WINDOWS >= 1 && Number.isInteger(REQUESTS) && REQUESTS >= 100 && Number.isInteger(WARM_REQUESTS) && WARM_REQUESTS >= 0)) throw new Error('--windows must be 1 or more, --requests 100 or more and --warm 0 or more')
requireCallgrind('bench:instructions')
if (TARGETS.some(t => t !== 'bare' && t !== 'fastify') && !existsSync(join(GATE_ROOT, 'dist/cli/main.js'))) throw new Error(`${GATE_ROOT}/dist is missing: run \`npm run build\` there first`)

const tmp = mkdtempSync(join(tmpdir(), 'jtg-instructions-'))
const children: ChildProcess[] = []
// Stopped at exit by its helper, as the children are here.
let redis: Awaited<ReturnType<typeof redisHolding>> | null = null
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  rmSync(tmp, { recursive: true, force: true })
})

/** Starts `argv` with node; under callgrind (uninstrumented until told) when `dumps` is given. */
function start (argv: string[], env: Record<string, string> | null, dumps: string | null): ChildProcess {
  const node = [process.execPath, ...(dumps !== null && PROFILE !== null ? ['--perf-basic-prof'] : []), ...(dumps !== null && !MEMORY_REDUCER ? ['--no-memory-reducer'] : []), ...argv]
  const command = dumps === null ? node : ['valgrind', '--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', ...(CACHE_SIM ? ['--cache-sim=yes'] : []), `--callgrind-out-file=${dumps}`, ...node]
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: env === null ? process.env : { PATH: process.env.PATH, ...env } })
  children.push(child)
  // Read and dropped: a gate writes its decision log to a pipe, as deployed.
  child.stdout!.resume()
  let err = ''
  child.stderr!.on('data', (chunk: Buffer) => { err = (err + chunk.toString()).slice(-4000) })
  child.once('exit', (code, signal) => { if (!stopping) console.error(`${argv.join(' ')} exited (${code ?? signal}): ${err}`) })
  return child
}
let stopping = false

async function drive (port: number, requests: Req[], amount: number, connections = CONNECTIONS): Promise<Record<string, number>> {
  const result = await autocannon({ url: `http://127.0.0.1:${port}`, connections, amount, requests: requests as autocannon.Request[] })
  const statuses = Object.fromEntries(Object.entries(result.statusCodeStats as Record<string, { count: number }>).map(([k, v]) => [k, v.count]))
  if (result.errors > 0) statuses.errors = result.errors
  return statuses
}

/** Cache misses per request of the main thread, by callgrind's event name. */
const MISSES = ['I1mr', 'D1mr', 'D1mw', 'ILmr', 'DLmr', 'DLmw']

interface Window { mainThread: number, otherThreads: number, statuses: Record<string, number>, gitlabCalls: number, misses?: Record<string, number> }
interface Measured { target: string, windows: Window[], mainThread: number, otherThreads: number, profile?: string }

/** The calls the gates made to the origin so far (job, project and group lookups). */
async function gitlabCalls (originUrl: string): Promise<number> {
  const counts = await (await fetch(`${originUrl}/__counts`)).json() as Record<string, number>
  return (counts.job ?? 0) + (counts.project ?? 0) + (counts.group ?? 0)
}

async function measure (target: string, originUrl: string): Promise<Measured> {
  const dir = join(tmp, target)
  mkdirSync(dir)
  const dumps = join(dir, 'callgrind.%p')
  let child: ChildProcess
  let port: number
  if (target === 'bare' || target === 'fastify') {
    child = start([join(ROOT, `bench/e2e/${target === 'bare' ? 'bare' : 'fastify'}-proxy.mjs`), originUrl], null, dumps)
    port = await listeningPort(child, `the ${target} proxy`)
  } else {
    // The Redis gate reads what the memory gate's state file holds, from a private Redis.
    if (target === 'redis' && redis === null) redis = await redisHolding(PROJECTS)
    child = start([join(GATE_ROOT, 'bin/job-token-gate.mjs'), 'serve'], {
      ...benchGateEnv(originUrl),
      ...(target === 'redis' ? { GATE_REDIS_URL: redis!.url } : { GATE_STATE_FILE: stateFile(tmp, PROJECTS) }),
      ...(STEADY ? { GATE_IDENTITY_CACHE_TTL_MS: STEADY_TTL_MS, GATE_GRANT_CACHE_TTL_MS: STEADY_TTL_MS, GATE_PROJECT_LOOKUP_TTL_MS: STEADY_TTL_MS, GATE_NAMESPACE_CACHE_TTL_MS: STEADY_TTL_MS, GATE_DECISION_LOG_REPEAT_WINDOW_MS: STEADY_TTL_MS, GATE_USAGE_FLUSH_INTERVAL_MS: STEADY_TTL_MS } : {})
    }, dumps)
    let health: number
    ({ port, health } = await gateReady(child, 'the gate'))
    await waitHttp(`http://127.0.0.1:${health}/-/readiness`, 300_000)
  }
  const pid = child.pid!
  const kind = target === 'bare' || target === 'fastify' || target === 'allowed' || target === 'redis' ? 'b' : target === 'denied' ? 'd' : null
  const requests = workload(kind, TOKENS, PROJECTS, TOKENS * 7)
  const expected = target === 'denied' ? '403' : '200'
  // Every token resolved and every project read once in order (one connection), then the JIT.
  await drive(port, requests, requests.length, 1)
  await drive(port, requests, WARM_REQUESTS)
  const control = (...command: string[]): void => { execFileSync('callgrind_control', [...command, String(pid)], { stdio: 'ignore' }) }
  control('-i', 'on')
  // Code is translated again once instrumented: one list's worth before counting.
  await drive(port, requests, requests.length)
  const windows: Window[] = []
  for (let w = 1; w <= WINDOWS; w++) {
    const callsBefore = await gitlabCalls(originUrl)
    control('-z')
    const statuses = await drive(port, requests, REQUESTS)
    control('-d')
    const calls = await gitlabCalls(originUrl) - callsBefore
    const total = Object.values(statuses).reduce((a, b) => a + b, 0)
    if (statuses[expected] !== REQUESTS || total !== REQUESTS) throw new Error(`${target}: expected ${REQUESTS} answers ${expected}, got ${JSON.stringify(statuses)}`)
    // One file per thread: <prefix>.<dump>-<thread>, thread 01 the main thread.
    const files = readdirSync(dir).filter(f => f.startsWith(`callgrind.${pid}.${w}-`))
    const main = files.find(f => f.endsWith('-01'))
    if (main === undefined) throw new Error(`${target}: no dump of the main thread for window ${w} in ${dir}`)
    const own = callgrindCounts(join(dir, main))
    windows.push({
      mainThread: Math.round(own.Ir! / REQUESTS),
      otherThreads: Math.round(files.filter(f => f !== main).reduce((s, f) => s + callgrindCounts(join(dir, f)).Ir!, 0) / REQUESTS),
      statuses,
      gitlabCalls: calls,
      ...(CACHE_SIM ? { misses: Object.fromEntries(MISSES.map(e => [e, Math.round(own[e]! / REQUESTS)])) } : {})
    })
  }
  stopping = true
  child.kill('SIGKILL')
  await new Promise(resolve => child.once('exit', resolve))
  stopping = false
  const mainThread = median(windows.map(w => w.mainThread))
  const measured: Measured = { target, windows, mainThread, otherThreads: median(windows.map(w => w.otherThreads)) }
  if (PROFILE !== null) measured.profile = keepProfile(target, dir, pid, windows.findIndex(w => w.mainThread === mainThread) + 1)
  return measured
}

/**
 * The main thread's dump of window `w`, JavaScript functions named: callgrind names code it has
 * no symbol for by its address, and node's perf map (--perf-basic-prof) says which function
 * each address range held. Returns the file written.
 */
function keepProfile (target: string, dir: string, pid: number, w: number): string {
  const out = join(resolve(PROFILE!), `${target}.callgrind`)
  mkdirSync(resolve(PROFILE!), { recursive: true })
  const mapFile = `/tmp/perf-${pid}.map`
  const ranges: Array<[number, number, string]> = []
  if (existsSync(mapFile)) {
    for (const line of readFileSync(mapFile, 'utf8').split('\n')) {
      const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line)
      if (m !== null) ranges.push([parseInt(m[1]!, 16), parseInt(m[2]!, 16), m[3]!.replaceAll(' ', '_')])
    }
    rmSync(mapFile)
  }
  ranges.sort((a, b) => a[0] - b[0])
  const nameOf = (address: number): string | null => {
    let lo = 0
    let hi = ranges.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (ranges[mid]![0] <= address) lo = mid + 1
      else hi = mid - 1
    }
    const r = ranges[hi]
    return r !== undefined && address < r[0] + r[1] ? r[2] : null
  }
  const text = readFileSync(join(dir, `callgrind.${pid}.${w}-01`), 'utf8')
  writeFileSync(out, text.replace(/^(c?fn=\(\d+\)) 0x([0-9a-f]+)$/gm, (line, head: string, hex: string) => {
    const name = nameOf(parseInt(hex, 16))
    return name === null ? line : `${head} ${name}`
  }))
  return out
}

/** Where a function's code comes from, for the profile's summary. */
function originOf (name: string): string {
  if (name.includes('/dist/')) return 'the gate (dist/)'
  if (name.includes('/node_modules/undici/')) return 'undici'
  if (name.includes('/node_modules/')) return 'other dependencies (find-my-way, lru-cache...)'
  if (name.includes('bench/e2e/')) return 'the bare proxy\'s own code'
  if (name.startsWith('JS:') && name.includes('_node:')) return 'Node\'s JavaScript (http, net, streams)'
  if (name.startsWith('JS:') || name.startsWith('RegExp:')) return 'other JavaScript, regular expressions'
  if (name.startsWith('Builtins_')) return 'V8 builtins'
  if (name.includes('v8::')) return 'V8 runtime, compiler, garbage collector'
  if (name.includes('node::') || name.includes('uv_') || name.includes('llhttp')) return 'Node\'s C++, libuv, llhttp'
  return 'libc and other native code'
}

/**
 * Prints the 25 functions with the most instructions of their own, then every function's own
 * counts summed by where its code comes from (with --cache-sim, its first-level cache misses too).
 */
function printProfile (file: string, requests: number): void {
  const events = CACHE_SIM ? ['Ir', 'I1mr', 'D1mr', 'D1mw'] : ['Ir']
  const text = execFileSync('callgrind_annotate', ['--threshold=100', `--show=${events.join(',')}`, '--sort=Ir', file], { maxBuffer: 256 * 1024 * 1024 }).toString()
  const functions: Array<{ name: string, counts: number[] }> = []
  for (const line of text.split('\n')) {
    // One column per event: a count with its share, or '.' for none; then file:function.
    const counts: number[] = []
    let rest = line
    for (let e = 0; e < events.length; e++) {
      const m = /^\s*([\d,]+ \(\s*[\d.]+%\)|\.)\s/.exec(rest)
      if (m === null) break
      counts.push(m[1] === '.' ? 0 : Number(m[1]!.slice(0, m[1]!.indexOf(' ')).replaceAll(',', '')))
      rest = rest.slice(m[0].length)
    }
    const name = rest.trim().replace(/^\?\?\?:/, '')
    if (counts.length === events.length && name !== '' && name !== 'PROGRAM TOTALS') functions.push({ name, counts })
  }
  const per = (n: number): string => String(Math.round(n / requests)).padStart(7)
  console.log(`    ${events.map(e => e.padStart(7)).join('')}  the functions with the most instructions of their own, per request`)
  for (const f of functions.slice(0, 25)) console.log(`    ${f.counts.map(per).join('')}  ${f.name.slice(0, 100)}`)
  const byOrigin = new Map<string, number[]>()
  for (const f of functions) {
    const sums = byOrigin.get(originOf(f.name)) ?? events.map(() => 0)
    f.counts.forEach((c, i) => { sums[i] = sums[i]! + c })
    byOrigin.set(originOf(f.name), sums)
  }
  console.log(`    ${events.map(e => e.padStart(7)).join('')}  by where the code comes from, per request`)
  for (const [origin, sums] of [...byOrigin].sort((a, b) => b[1][0]! - a[1][0]!)) console.log(`    ${sums.map(per).join('')}  ${origin}`)
}

async function main (): Promise<void> {
  const startedAt = Date.now()
  const origin = start([join(ROOT, 'bench/e2e/origin.mjs')], null, null)
  const originUrl = `http://127.0.0.1:${await listeningPort(origin, 'the origin')}`
  const results: Measured[] = []
  for (const target of TARGETS) {
    const m = await measure(target, originUrl)
    results.push(m)
    console.log(`${target.padEnd(8)} ${String(m.mainThread).padStart(8)} instructions per request (main thread; windows ${m.windows.map(w => w.mainThread).join(', ')}), other threads ${m.otherThreads}`)
    if (target !== 'bare' && target !== 'fastify') console.log(`         GitLab calls of the gate per window (job, project and group lookups): ${m.windows.map(w => w.gitlabCalls).join(', ')}`)
    const misses = m.windows.find(w => w.mainThread === m.mainThread)?.misses
    if (misses !== undefined) console.log(`         cache misses per request (main thread, median window): ${MISSES.map(e => `${e} ${misses[e]}`).join(', ')}`)
    if (m.profile !== undefined) {
      console.log(`  ${m.profile}:`)
      printProfile(m.profile, REQUESTS)
    }
  }
  const bare = results.find(r => r.target === 'bare')
  const ratios: Record<string, number> = {}
  if (bare !== undefined) {
    for (const r of results) if (r !== bare) ratios[`bare / ${r.target}`] = Math.round(bare.mainThread / r.mainThread * 1000) / 1000
  }
  const fastify = results.find(r => r.target === 'fastify')
  const allowed = results.find(r => r.target === 'allowed')
  if (fastify !== undefined && allowed !== undefined) ratios['fastify / allowed'] = Math.round(fastify.mainThread / allowed.mainThread * 1000) / 1000
  const onRedis = results.find(r => r.target === 'redis')
  if (onRedis !== undefined && allowed !== undefined) ratios['allowed / redis'] = Math.round(allowed.mainThread / onRedis.mainThread * 1000) / 1000
  for (const [name, value] of Object.entries(ratios)) console.log(`${name.padEnd(17)} ${value.toFixed(3)}  (as bench:e2e's CPU ratio: above 1, the second executes fewer)`)
  writeFileSync(OUT, JSON.stringify({ gateRoot: GATE_ROOT, node: process.version, steady: STEADY, connections: CONNECTIONS, requestsPerWindow: REQUESTS, results, ratios, seconds: Math.round((Date.now() - startedAt) / 1000) }, null, 2) + '\n')
  console.log(`JSON: ${OUT}; ${Math.round((Date.now() - startedAt) / 1000)} s`)
  stopping = true
  process.exit(0)
}

await main()
