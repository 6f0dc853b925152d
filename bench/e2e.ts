// End-to-end throughput (`npm run bench:e2e`; `--quick` for about a minute; `--scale` for the
// allowlist-size and token-count run; `--processes n` for n processes per Node proxy; `--out
// file.json`). See bench/README.md.
//
// On loopback: a small origin (bench/e2e/origin.mjs), then each target in front of it, all driven
// with the same load for the same time, rounds interleaved, medians reported:
//   origin alone; bare node:http + undici Pool (bench/e2e/bare-proxy.mjs, the floor of proxying
//   in Node); @fastify/http-proxy; nginx with upstream keepalive (when /usr/sbin/nginx exists);
//   the gate from dist/ with its default settings: allowed job tokens with warm caches (memory
//   store, Redis store), denied job tokens, no job token, and forward-auth behind nginx.
// Per target: requests/s, p50/p99 latency, CPU time of the proxy process per request (from
// /proc/<pid>/stat: less sensitive to a busy machine than requests/s), ratios against the bare
// proxy; then latency at one connection, measured per request, and the upstream calls a cold
// cache costs. The gate runs compiled JavaScript: `npm run build` first (the npm script does).

import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { Client } from 'undici'
import { createRedisStore } from '../src/grants/redis-store.ts'
import { createMemoryStore } from '../src/grants/memory-store.ts'
import { createGrantCache } from '../src/grants/cache.ts'
import { createTokenCache } from '../src/identity/cache.ts'
import type { JobIdentity } from '../src/identity/types.ts'
import { freePort, startRedis, type RedisServer } from '../test/helpers/redis.ts'
import { listeningPort, median, waitHttp } from './common.ts'
import { benchGateEnv, grantsOf, stateFile as writeStateFile, token, workload, type Req } from './e2e/workload.ts'

const args = process.argv.slice(2)
const QUICK = args.includes('--quick')
const SCALE = args.includes('--scale')
const profileIndex = args.indexOf('--profile')
const PROFILE = profileIndex >= 0 ? args[profileIndex + 1]! : null
const compareIndex = args.indexOf('--compare')
const COMPARE = compareIndex >= 0 ? args[compareIndex + 1]! : null
const outIndex = args.indexOf('--out')
const OUT = outIndex >= 0 ? args[outIndex + 1]! : join(tmpdir(), `job-token-gate-e2e-${SCALE ? 'scale' : 'main'}.json`)
const roundsArg = args.indexOf('--rounds')
/** Rounds of the full run (`--rounds n`; `--compare` has its own default). */
const ROUNDS = roundsArg >= 0 ? Number(args[roundsArg + 1]) : QUICK ? 2 : 3
const processesArg = args.indexOf('--processes')
/**
 * Processes per Node proxy of the full run (`--processes n`, default 1): the bare proxy, fastify
 * and both gates. Two identical Node processes here can differ by 10-20% in CPU per request for
 * their whole life (which one is which is luck), so a ratio of one process against one other
 * moves by as much between runs; with n, each row is the median over its n processes' samples.
 */
const PROCESSES = processesArg >= 0 ? Number(args[processesArg + 1]) : 1
if (!Number.isInteger(PROCESSES) || PROCESSES < 1) throw new Error(`--processes takes a positive integer, got ${String(args[processesArg + 1])}`)
const DURATION_S = QUICK ? 2 : 6
const WARMUP_S = QUICK ? 0.5 : 1
const CONNECTIONS = 32
const C1_REQUESTS = QUICK ? 500 : 2000
const NGINX = '/usr/sbin/nginx'
const ROOT = new URL('..', import.meta.url).pathname
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100

const tmp = mkdtempSync(join(tmpdir(), 'jtg-e2e-'))
const children: ChildProcess[] = []
let redis: RedisServer | null = null
const stateFile = (projects: number): string => writeStateFile(tmp, projects)
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  rmSync(tmp, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------------------------
// Processes

interface Proc { readonly name: string, readonly child: ChildProcess, readonly pid: number, logBytes: number, logLines: number }

function track (name: string, child: ChildProcess): Proc {
  children.push(child)
  const proc: Proc = { name, child, pid: child.pid!, logBytes: 0, logLines: 0 }
  child.stdout?.on('data', (chunk: Buffer) => {
    proc.logBytes += chunk.length
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) proc.logLines++
  })
  let err = ''
  child.stderr?.on('data', (chunk: Buffer) => { err = (err + chunk.toString()).slice(-4000) })
  child.once('exit', (code, signal) => { if (!stopping) console.error(`${name} exited (${code ?? signal}): ${err}`) })
  return proc
}
let stopping = false

async function startNodeServer (name: string, script: string, argv: string[]): Promise<{ proc: Proc, port: number }> {
  const child = spawn(process.execPath, [join(ROOT, script), ...argv], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  const proc = track(name, child)
  return { proc, port: await listeningPort(child, name) }
}

interface Gate { proc: Proc, port: number, health: number, auth: number }

/** `nodeArgs`: options of the gate's node (the profile run's `--cpu-prof`); `root`: the checkout whose dist/ runs. */
async function startGate (name: string, origin: string, env: Record<string, string>, nodeArgs: string[] = [], root = ROOT): Promise<Gate> {
  const [port, health, auth] = [await freePort(), await freePort(), await freePort()]
  const child = spawn(process.execPath, [...nodeArgs, join(root, 'bin/job-token-gate.mjs'), 'serve'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, ...benchGateEnv(origin, port, health), GATE_AUTH_LISTEN: `127.0.0.1:${auth}`, ...env }
  })
  const proc = track(name, child)
  await waitHttp(`http://127.0.0.1:${health}/-/readiness`, 60_000)
  return { proc, port, health, auth }
}

function nginxConf (listen: number, origin: number, authPort: number | null): string {
  const auth = authPort === null
    ? ''
    : `
    upstream gate_auth { server 127.0.0.1:${authPort}; keepalive 64; }`
  const guard = authPort === null
    ? ''
    : `
      auth_request /_job_token_gate;`
  const authLocation = authPort === null
    ? ''
    : `
    location = /_job_token_gate {
      internal;
      proxy_pass http://gate_auth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Content-Length $content_length;
      proxy_set_header X-Original-Transfer-Encoding $http_transfer_encoding;
    }`
  const dir = mkdtempSync(join(tmp, 'nginx-'))
  return `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  # nginx closes a client connection after 1,000 requests by default, and autocannon now and then
  # counts an error when that happens (1 to 3 in 600,000 requests; none with this).
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream origin { server 127.0.0.1:${origin}; keepalive 64; }${auth}
  server {
    listen 127.0.0.1:${listen};
    location / {${guard}
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_request_buffering off;
      client_max_body_size 0;
    }${authLocation}
  }
}
`
}

async function startNginx (name: string, origin: number, authPort: number | null): Promise<{ proc: Proc, port: number }> {
  const port = await freePort()
  const file = join(tmp, `${name}.conf`)
  writeFileSync(file, nginxConf(port, origin, authPort))
  const child = spawn(NGINX, ['-c', file, '-p', tmp], { stdio: ['ignore', 'pipe', 'pipe'] })
  const proc = track(name, child)
  await waitHttp(`http://127.0.0.1:${port}/api/v4/version`)
  return { proc, port }
}

/** CPU seconds (user + system, every thread) of a process so far. */
function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

/** Resident set and V8 heap used of a gate, from its /metrics. */
async function gateMemory (gate: Gate): Promise<{ rssBytes: number, heapUsedBytes: number }> {
  const text = await (await fetch(`http://127.0.0.1:${gate.health}/metrics`)).text()
  const read = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)
  return { rssBytes: read('process_resident_memory_bytes'), heapUsedBytes: read('nodejs_heap_size_used_bytes') }
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface Target {
  readonly name: string
  readonly port: number
  readonly requests: Req[]
  /** Processes whose CPU time is the proxy's (the first is reported per request). */
  readonly pids: number[]
  readonly expect: number
  /** A gate's process: decision lines are counted. */
  readonly gate?: Proc
}

interface Sample { round: number, pid: number, statuses: Record<string, number>, rps: number, p50: number, p99: number, cpuUsPerReq: number, cpuAllUsPerReq: number, total: number, unexpected: number, logLinesPerReq: number | null, load1: number }

const samples = new Map<string, Sample[]>()
/** The round being measured: a sample is paired with the samples of its own round. */
let currentRound = 0

/**
 * autocannon builds every request of the list once per connection: fine for a few hundred, but
 * 70,000 (the scale run) times 32 connections made the load generator the bottleneck. A long
 * list is served by one request whose setupRequest takes the next entry of a shared cursor.
 */
function loadRequests (list: Req[]): autocannon.Request[] {
  if (list.length <= 1000) return list as autocannon.Request[]
  let next = 0
  return [{ setupRequest: (req: autocannon.Request) => ({ ...req, ...list[next++ % list.length]! }) }]
}

async function drive (target: Target, seconds: number, connections = CONNECTIONS): Promise<autocannon.Result> {
  return await autocannon({
    url: `http://127.0.0.1:${target.port}`,
    connections,
    duration: seconds,
    requests: loadRequests(target.requests)
  })
}

/**
 * Warms a target's caches and the JIT: its whole request list once in order on one connection
 * (autocannon runs a list from its start on every connection, so 32 connections of a short run
 * would only reach its first entries: the tokens after them would be resolved while measured),
 * then the list twice over on all connections.
 */
async function warm (port: number, requests: Req[]): Promise<void> {
  await autocannon({ url: `http://127.0.0.1:${port}`, connections: 1, amount: requests.length, requests: loadRequests(requests) })
  await autocannon({ url: `http://127.0.0.1:${port}`, connections: CONNECTIONS, amount: requests.length * 2, requests: loadRequests(requests) })
}

async function measure (target: Target): Promise<Sample> {
  await drive(target, WARMUP_S)
  const cpu0 = target.pids.map(cpuSeconds)
  const lines0 = target.gate?.logLines ?? 0
  const result = await drive(target, DURATION_S)
  const cpu1 = target.pids.map(cpuSeconds)
  const total = result.requests.total
  const status = result.statusCodeStats as Record<string, { count: number }>
  const expected = status[String(target.expect)]?.count ?? 0
  const sample: Sample = {
    round: currentRound,
    pid: target.pids[0]!,
    statuses: Object.fromEntries(Object.entries(status).map(([k, v]) => [k, v.count])),
    rps: total / DURATION_S,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuUsPerReq: (cpu1[0]! - cpu0[0]!) * 1e6 / total,
    cpuAllUsPerReq: cpu1.reduce((s, c, i) => s + c - cpu0[i]!, 0) * 1e6 / total,
    total,
    unexpected: total - expected + result.errors,
    logLinesPerReq: target.gate === undefined ? null : (target.gate.logLines - lines0) / total,
    load1: loadavg()[0]!
  }
  const list = samples.get(target.name) ?? []
  list.push(sample)
  samples.set(target.name, list)
  return sample
}

/**
 * Sequential requests on one connection per target, each timed, in blocks of 50 alternating
 * between the targets (a busy neighbour slows each alike): p50/p99 in µs per target.
 */
async function latencyAtOneConnection (targets: Target[], n: number): Promise<Array<{ p50: number, p99: number }>> {
  const clients = targets.map(t => new Client(`http://127.0.0.1:${t.port}`, { pipelining: 1 }))
  const times: number[][] = targets.map(() => [])
  const BLOCK = 50
  try {
    for (let done = -100; done < n; done += BLOCK) {
      for (let k = 0; k < targets.length; k++) {
        const target = targets[k]!
        for (let i = 0; i < BLOCK; i++) {
          const r = target.requests[(done + 100 + i) % target.requests.length]!
          const t0 = process.hrtime.bigint()
          const res = await clients[k]!.request({ method: r.method as 'GET', path: r.path, headers: r.headers })
          await res.body.dump()
          if (done >= 0) times[k]!.push(Number(process.hrtime.bigint() - t0) / 1000)
        }
      }
    }
  } finally {
    await Promise.all(clients.map(c => c.close()))
  }
  return times.map(list => {
    list.sort((a, b) => a - b)
    return { p50: list[Math.floor(list.length * 0.5)]!, p99: list[Math.floor(list.length * 0.99)]! }
  })
}

async function originCounts (origin: number): Promise<Record<string, number>> {
  return await (await fetch(`http://127.0.0.1:${origin}/__counts`)).json() as Record<string, number>
}

async function send (port: number, r: Req): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}${r.path}`, { method: r.method, headers: r.headers })
  await res.arrayBuffer()
  return res.status
}

function redisCommands (): number {
  const info = redis!.cli('INFO', 'stats')
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? NaN)
}

// ---------------------------------------------------------------------------------------------

const fmt = (n: number, d = 0): string => Number.isFinite(n) ? n.toFixed(d) : '-'

/**
 * The median over rounds of b's CPU per request over a's, the two measured in the same round (the
 * median of a round's samples where a target has several processes): a machine that slows down
 * or speeds up between rounds moves both alike.
 */
function pairedCpuRatio (a: string, b: string): number {
  const mine = samples.get(a)
  const theirs = samples.get(b)
  if (mine === undefined || theirs === undefined) return NaN
  return Number(median(roundRatios(mine, theirs)).toFixed(3))
}

/** Per round both measured in: the median CPU per request of `theirs` over that of `mine`. */
function roundRatios (mine: Sample[], theirs: Sample[]): number[] {
  const inRound = (list: Sample[], round: number): number => median(list.filter(s => s.round === round).map(s => s.cpuUsPerReq))
  const rounds = [...new Set(mine.map(s => s.round))].filter(r => theirs.some(s => s.round === r))
  return rounds.map(r => inRound(theirs, r) / inRound(mine, r))
}

/** Each process's median CPU per request, in the order the processes were first measured. */
function processMedians (list: Sample[]): number[] {
  return [...new Set(list.map(s => s.pid))].map(pid => median(list.filter(s => s.pid === pid).map(s => s.cpuUsPerReq)))
}

function summarize (names: string[], baseline: string): Array<Record<string, unknown>> {
  const base = samples.get(baseline)
  const baseRps = base === undefined ? NaN : median(base.map(s => s.rps))
  const baseCpu = base === undefined ? NaN : median(base.map(s => s.cpuUsPerReq))
  return names.filter(n => samples.has(n)).map(name => {
    const list = samples.get(name)!
    const rps = median(list.map(s => s.rps))
    const cpu = median(list.map(s => s.cpuUsPerReq))
    return {
      target: name,
      rps: Math.round(rps),
      rpsRange: [Math.round(Math.min(...list.map(s => s.rps))), Math.round(Math.max(...list.map(s => s.rps)))],
      p50Ms: median(list.map(s => s.p50)),
      p99Ms: median(list.map(s => s.p99)),
      cpuUsPerRequest: Number(cpu.toFixed(1)),
      cpuSecondsPer10k: Number((cpu * 1e4 / 1e6).toFixed(3)),
      cpuAllProcessesUsPerRequest: Number(median(list.map(s => s.cpuAllUsPerReq)).toFixed(1)),
      cpuUsPerRequestByProcess: processMedians(list).map(x => Number(x.toFixed(1))),
      rpsOverBare: Number((rps / baseRps).toFixed(3)),
      bareCpuOverCpu: Number((baseCpu / cpu).toFixed(3)),
      pairedBareCpuOverCpu: pairedCpuRatio(name, baseline),
      unexpectedAnswers: list.reduce((s, x) => s + x.unexpected, 0),
      statuses: list[list.length - 1]!.statuses,
      logLinesPerRequest: list[0]!.logLinesPerReq === null ? undefined : Number(median(list.map(s => s.logLinesPerReq!)).toFixed(3))
    }
  })
}

function printTable (rows: Array<Record<string, unknown>>): void {
  console.log(`${'target'.padEnd(44)} ${'req/s'.padStart(7)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'CPU µs/req'.padStart(10)} ${'CPU s/10k'.padStart(9)} ${'rps ×bare'.padStart(9)} ${'cpu ×bare'.padStart(9)} ${'log/req'.padStart(7)}`)
  for (const r of rows) {
    console.log(`${String(r.target).padEnd(44)} ${fmt(r.rps as number).padStart(7)} ${fmt(r.p50Ms as number, 1).padStart(7)} ${fmt(r.p99Ms as number, 1).padStart(7)} ${fmt(r.cpuUsPerRequest as number).padStart(10)} ${fmt(r.cpuSecondsPer10k as number, 2).padStart(9)} ${fmt(r.rpsOverBare as number, 2).padStart(9)} ${fmt(r.bareCpuOverCpu as number, 2).padStart(9)} ${r.logLinesPerRequest === undefined ? '' : fmt(r.logLinesPerRequest as number, 2).padStart(7)}`)
    const byProcess = r.cpuUsPerRequestByProcess as number[]
    if (byProcess.length > 1) console.log(`  CPU µs/req of each process: ${byProcess.map(x => fmt(x)).join(' / ')}`)
    if ((r.unexpectedAnswers as number) > 0) console.log(`  ! ${String(r.unexpectedAnswers)} answers had another status than expected (last round: ${JSON.stringify(r.statuses)})`)
  }
}

async function main (): Promise<void> {
  const started = Date.now()
  const load0 = loadavg()
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first')
  const { proc: originProc, port: origin } = await startNodeServer('origin', 'bench/e2e/origin.mjs', [])
  const originUrl = `http://127.0.0.1:${origin}`
  if (SCALE) return await scale(originUrl, origin, started, load0)
  if (PROFILE !== null) return await profile(originUrl, PROFILE)
  if (COMPARE !== null) return await compare(originUrl, COMPARE)

  const each = async <T>(start: (p: number) => Promise<T>): Promise<T[]> => {
    const list: T[] = []
    for (let p = 1; p <= PROCESSES; p++) list.push(await start(p))
    return list
  }
  const bares = await each(async p => await startNodeServer(`bare-${p}`, 'bench/e2e/bare-proxy.mjs', [originUrl]))
  const fastifies = await each(async p => await startNodeServer(`fastify-${p}`, 'bench/e2e/fastify-proxy.mjs', [originUrl]))
  const hasNginx = existsSync(NGINX)
  if (!hasNginx) console.log(`NOTICE: ${NGINX} not found: the nginx rows are skipped (Debian: apt-get install nginx-light)`)

  const TOKENS = 100
  const PROJECTS = 10
  const memGates = await each(async p => await startGate(`gate-memory-${p}`, originUrl, { GATE_STATE_FILE: stateFile(PROJECTS) }))
  const memGate = memGates[0]!
  redis = await startRedis()
  const store = await createRedisStore({ url: redis.url })
  for (let p = 1; p <= PROJECTS; p++) await store.put(grantsOf(p))
  await store.close()
  const redisGates = await each(async p => await startGate(`gate-redis-${p}`, originUrl, { GATE_REDIS_URL: redis!.url }))
  const redisGate = redisGates[0]!
  const nginx = hasNginx ? await startNginx('nginx', origin, null) : null
  const nginxAuth = hasNginx ? await startNginx('nginx-forward-auth', origin, memGate.auth) : null

  const N = TOKENS * 7
  const allowed = workload('b', TOKENS, PROJECTS, N)
  const plain = workload(null, TOKENS, PROJECTS, N)
  const denied = workload('d', TOKENS, PROJECTS, N)
  // Targets of the same name (one per process) add their samples to one row.
  const targets: Target[] = [
    { name: 'origin alone', port: origin, requests: allowed, pids: [originProc.pid], expect: 200 },
    ...bares.map(bare => ({ name: 'bare node:http + undici Pool', port: bare.port, requests: allowed, pids: [bare.proc.pid, originProc.pid], expect: 200 })),
    ...fastifies.map(fastify => ({ name: '@fastify/http-proxy', port: fastify.port, requests: allowed, pids: [fastify.proc.pid, originProc.pid], expect: 200 })),
    ...(nginx === null ? [] : [{ name: 'nginx, 1 worker, upstream keepalive', port: nginx.port, requests: allowed, pids: [nginx.proc.pid, originProc.pid], expect: 200 }]),
    ...memGates.map(g => ({ name: 'gate: job token allowed, warm, memory store', port: g.port, requests: allowed, pids: [g.proc.pid, originProc.pid], expect: 200, gate: g.proc })),
    ...redisGates.map(g => ({ name: 'gate: job token allowed, warm, Redis store', port: g.port, requests: allowed, pids: [g.proc.pid, originProc.pid], expect: 200, gate: g.proc })),
    ...memGates.map(g => ({ name: 'gate: job token denied (nothing forwarded)', port: g.port, requests: denied, pids: [g.proc.pid], expect: 403, gate: g.proc })),
    ...memGates.map(g => ({ name: 'gate: no job token (pass-through)', port: g.port, requests: plain, pids: [g.proc.pid, originProc.pid], expect: 200, gate: g.proc })),
    ...(nginxAuth === null ? [] : [{ name: 'gate: forward-auth behind nginx (gate CPU)', port: nginxAuth.port, requests: allowed, pids: [memGate.proc.pid, nginxAuth.proc.pid, originProc.pid], expect: 200, gate: memGate.proc }])
  ]

  // A cold cache costs one upstream round trip per token (GET /job) and per job project
  // (GET /projects/:id), and one Redis read per accessed project; the second request none.
  const cold: Record<string, unknown> = {}
  {
    const r: Req = { method: 'GET', path: '/api/v4/projects/3/deployments', headers: { 'job-token': token('b', 90001) } }
    const before = await originCounts(origin)
    const redis0 = redisCommands()
    const s1 = await send(redisGate.port, r)
    const mid = await originCounts(origin)
    const redis1 = redisCommands()
    const s2 = await send(redisGate.port, r)
    const after = await originCounts(origin)
    const redis2 = redisCommands()
    cold.firstRequest = { status: s1, gitlabJobCalls: mid.job! - before.job!, gitlabProjectCalls: mid.project! - before.project!, gitlabGroupCalls: mid.group! - before.group!, redisCommands: redis1 - redis0 - 1 }
    cold.secondRequest = { status: s2, gitlabCalls: after.job! + after.project! + after.group! - mid.job! - mid.project! - mid.group!, redisCommands: redis2 - redis1 - 1 }
  }

  const c1: Record<string, Array<{ p50: number, p99: number }>> = {}
  const c1Targets = targets.filter(t => ['origin alone', 'bare node:http + undici Pool', 'gate: job token allowed, warm, memory store', 'gate: no job token (pass-through)'].includes(t.name))
  // Warm every cache and the JIT, unmeasured.
  for (const target of targets) await warm(target.port, target.requests)
  const callsBefore = await originCounts(origin)
  const roundLoads: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    currentRound = round
    // Rounds interleaved: a busy neighbour slows every target of a round alike; every other round
    // in reverse order, so that a machine drifting within a round favours no target.
    for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
      const s = await measure(target)
      console.error(`round ${round + 1}/${ROUNDS} ${target.name}: ${fmt(s.rps)} req/s, ${fmt(s.cpuUsPerReq)} µs CPU/req, load ${s.load1.toFixed(2)}`)
    }
    const latencies = await latencyAtOneConnection(c1Targets, C1_REQUESTS)
    c1Targets.forEach((target, k) => (c1[target.name] ??= []).push(latencies[k]!))
    roundLoads.push(loadavg()[0]!)
  }

  const callsAfter = await originCounts(origin)
  cold.gitlabCallsDuringRounds = { job: callsAfter.job! - callsBefore.job!, project: callsAfter.project! - callsBefore.project! }
  const rows = summarize([...new Set(targets.map(t => t.name))], 'bare node:http + undici Pool')
  const c1Rows = Object.fromEntries(Object.entries(c1).map(([name, list]) => [name, { p50Us: Math.round(median(list.map(x => x.p50))), p99Us: Math.round(median(list.map(x => x.p99))) }]))
  const bareP50 = c1Rows['bare node:http + undici Pool']!.p50Us
  const byName = Object.fromEntries(rows.map(r => [r.target as string, r]))
  const ratio = (a: string, b: string, key = 'rps'): number => Number(((byName[a]?.[key] as number) / (byName[b]?.[key] as number)).toFixed(3))
  const cpuRatio = (a: string, b: string): number => Number(((byName[b]?.cpuUsPerRequest as number) / (byName[a]?.cpuUsPerRequest as number)).toFixed(3))
  // a's throughput and CPU against b's: the ratio of medians, and the paired one.
  const against = (a: string, b: string, target: string): { rps: number, cpu: number, cpuPaired: number, target: string } =>
    ({ rps: ratio(a, b), cpu: cpuRatio(a, b), cpuPaired: pairedCpuRatio(a, b), target })
  const targetsMet = {
    allowedOverBare: against('gate: job token allowed, warm, memory store', 'bare node:http + undici Pool', '>= 0.9'),
    noTokenOverBare: against('gate: no job token (pass-through)', 'bare node:http + undici Pool', '>= 0.95'),
    redisOverMemory: against('gate: job token allowed, warm, Redis store', 'gate: job token allowed, warm, memory store', '>= 0.95'),
    allowedOverFastify: against('gate: job token allowed, warm, memory store', '@fastify/http-proxy', '>= 1.5'),
    deniedOverBare: against('gate: job token denied (nothing forwarded)', 'bare node:http + undici Pool', '>= 1.5'),
    addedP50AtOneConnectionUs: { value: c1Rows['gate: job token allowed, warm, memory store']!.p50Us - bareP50, target: '<= 100' },
    addedP50AtOneConnectionNoTokenUs: { value: c1Rows['gate: no job token (pass-through)']!.p50Us - bareP50, target: '<= 100' }
  }
  const result = {
    node: process.version,
    date: new Date().toISOString(),
    quick: QUICK,
    rounds: ROUNDS,
    processes: PROCESSES,
    durationSeconds: DURATION_S,
    connections: CONNECTIONS,
    loadGenerator: `autocannon ${JSON.parse(readFileSync(join(ROOT, 'node_modules/autocannon/package.json'), 'utf8')).version as string} (in the harness process)`,
    loadAverage: { atStart: load0.map(x => Number(x.toFixed(2))), perRound: roundLoads.map(x => Number(x.toFixed(2))), atEnd: loadavg().map(x => Number(x.toFixed(2))) },
    nginx: hasNginx,
    results: rows,
    oneConnection: c1Rows,
    coldCache: cold,
    ratios: targetsMet,
    totalSeconds: Math.round((Date.now() - started) / 1000)
  }
  writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n')

  console.log(`node ${process.version}; ${ROUNDS} interleaved rounds of ${DURATION_S} s, ${PROCESSES} process${PROCESSES === 1 ? '' : 'es'} per Node proxy, ${CONNECTIONS} connections, medians; load average ${load0[0]!.toFixed(2)} at start, ${roundLoads.map(x => x.toFixed(2)).join(' / ')} after each round`)
  console.log('CPU µs/req: the proxy process alone (user + system); cpu ×bare: bare proxy CPU per request / this one (higher is cheaper)')
  console.log('')
  printTable(rows)
  console.log('')
  console.log('one connection, sequential requests (µs):')
  for (const [name, r] of Object.entries(c1Rows)) console.log(`  ${name.padEnd(44)} p50 ${String(r.p50Us).padStart(6)}  p99 ${String(r.p99Us).padStart(6)}`)
  console.log('')
  console.log(`cold cache, one request (Redis gate): ${JSON.stringify(cold.firstRequest)}; the same again: ${JSON.stringify(cold.secondRequest)}`)
  console.log(`GitLab calls of the gates during the measured rounds (warm caches): ${JSON.stringify(cold.gitlabCallsDuringRounds)}`)
  console.log('')
  console.log(`${'ratio'.padEnd(44)} ${'req/s'.padStart(7)} ${'CPU'.padStart(7)} ${'paired'.padStart(7)}  target`)
  for (const [name, r] of Object.entries(targetsMet)) {
    if ('value' in r) console.log(`${name.padEnd(44)} ${String(r.value).padStart(7)} ${''.padStart(7)} ${''.padStart(7)}  ${r.target}`)
    else console.log(`${name.padEnd(44)} ${fmt(r.rps, 2).padStart(7)} ${fmt(r.cpu, 2).padStart(7)} ${fmt(r.cpuPaired, 2).padStart(7)}  ${r.target}`)
  }
  console.log('paired: the median over rounds of the two CPU figures of one round (steadier on a busy machine)')
  console.log('')
  console.log(`JSON: ${OUT}; total ${result.totalSeconds} s`)
}

// ---------------------------------------------------------------------------------------------
// Compare: this checkout's gate against another's (a worktree of an earlier commit, built), both
// with the memory store, under the allowed, denied and no-token loads, in many short interleaved
// rounds: a busy neighbour slows both alike, so the ratio of their CPU per request is steadier
// than either number. Rounds: 8 (`--quick`: 4; `--rounds n`) per gate and load.

async function compare (originUrl: string, otherRoot: string): Promise<void> {
  const TOKENS = 100
  const PROJECTS = 10
  if (!existsSync(join(otherRoot, 'dist/cli/main.js'))) throw new Error(`${otherRoot}/dist is missing: build it first`)
  // `--other-env NAME=value` (repeatable): settings of the other gate only (`--compare .` then
  // measures what a setting costs).
  const otherEnv = Object.fromEntries(args.flatMap((a, i) => a === '--other-env' ? [args[i + 1]!.split(/=(.*)/s).slice(0, 2) as [string, string]] : []))
  // `--other-redis`: the other gate on the Redis store (a private Redis holding the same grants).
  const otherStore = async (): Promise<Record<string, string>> => {
    if (!args.includes('--other-redis')) return { GATE_STATE_FILE: stateFile(PROJECTS) }
    redis = await startRedis()
    const store = await createRedisStore({ url: redis.url })
    for (let p = 1; p <= PROJECTS; p++) await store.put(grantsOf(p))
    await store.close()
    return { GATE_REDIS_URL: redis.url }
  }
  // `--processes n`: n gates of each checkout, a round's figure the median of its n processes.
  const otherGateEnv = { ...await otherStore(), ...otherEnv }
  const gates: Array<{ label: string, gate: Gate }> = []
  for (let p = 1; p <= PROCESSES; p++) {
    gates.push({ label: 'this', gate: await startGate(`gate-this-${p}`, originUrl, { GATE_STATE_FILE: stateFile(PROJECTS) }) })
    gates.push({ label: 'other', gate: await startGate(`gate-other-${p}`, originUrl, otherGateEnv, [], otherRoot) })
  }
  const loads: Array<[string, Req[], number]> = [
    ['allowed', workload('b', TOKENS, PROJECTS, TOKENS * 7), 200],
    ['denied', workload('d', TOKENS, PROJECTS, TOKENS * 7), 403],
    ['no token', workload(null, TOKENS, PROJECTS, TOKENS * 7), 200]
  ]
  const targets = loads.flatMap(([load, requests, expect]) => gates.map(({ label, gate }) =>
    ({ name: `${load}: ${label}`, port: gate.port, requests, pids: [gate.proc.pid], expect, gate: gate.proc })))
  for (const target of targets) await warm(target.port, target.requests)
  const roundsIndex = args.indexOf('--rounds')
  const rounds = roundsIndex >= 0 ? Number(args[roundsIndex + 1]) : QUICK ? 4 : 8
  for (let round = 0; round < rounds; round++) {
    currentRound = round
    // Alternate which gate goes first: the second of a pair meets a warmer (or busier) machine.
    for (const [load] of loads) {
      const pair = targets.filter(t => t.name.startsWith(`${load}: `))
      for (const target of round % 2 === 0 ? pair : [...pair].reverse()) {
        const s = await measure(target)
        console.error(`round ${round + 1}/${rounds} ${target.name}: ${fmt(s.cpuUsPerReq, 1)} µs CPU/req, load ${s.load1.toFixed(2)}`)
      }
    }
  }
  console.log(`CPU µs per request, median of ${rounds} interleaved rounds of ${DURATION_S} s, ${PROCESSES} process${PROCESSES === 1 ? '' : 'es'} of each (this: ${ROOT}, other: ${otherRoot} ${JSON.stringify(otherEnv)}); load average ${loadavg().map(x => x.toFixed(2)).join(' ')}`)
  for (const [load] of loads) {
    const mine = samples.get(`${load}: this`)!
    const theirs = samples.get(`${load}: other`)!
    // Per round: the two checkouts measured back to back (the median of each one's processes).
    const ratios = roundRatios(mine, theirs)
    const unexpected = [...mine, ...theirs].reduce((n, s) => n + s.unexpected, 0)
    console.log(`  ${load.padEnd(9)} this ${fmt(median(mine.map(s => s.cpuUsPerReq)), 1).padStart(6)}  other ${fmt(median(theirs.map(s => s.cpuUsPerReq)), 1).padStart(6)}  other/this per round: median ${fmt(median(ratios), 3)}, ${ratios.map(r => fmt(r, 2)).join(' ')}${unexpected > 0 ? `  (${unexpected} unexpected answers)` : ''}`)
    if (PROCESSES > 1) {
      const perProcess = (list: Sample[]): string => processMedians(list).map(x => fmt(x, 1)).join(' / ')
      console.log(`            each process: this ${perProcess(mine)}; other ${perProcess(theirs)}`)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Profiles: one memory-store gate per load (allowed, denied, no token; then allowed on a gate
// with the Redis store) under `node --cpu-prof`,
// warmed, driven for the round's duration, stopped with SIGTERM (which writes the profile); then
// the functions with the most self time of each, and the share of the gate's own modules.

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], startTime: number, samples: number[], timeDeltas: number[] }

async function profile (originUrl: string, dir: string): Promise<void> {
  const TOKENS = 100
  const PROJECTS = 10
  const loads: Array<[string, Req[]]> = [
    ['allowed', workload('b', TOKENS, PROJECTS, TOKENS * 7)],
    ['denied', workload('d', TOKENS, PROJECTS, TOKENS * 7)],
    ['no-token', workload(null, TOKENS, PROJECTS, TOKENS * 7)]
  ]
  // The allowed load again, on a gate with the Redis store.
  redis = await startRedis()
  const store = await createRedisStore({ url: redis.url })
  for (let p = 1; p <= PROJECTS; p++) await store.put(grantsOf(p))
  await store.close()
  loads.push(['allowed-redis', loads[0]![1]])
  const seconds = QUICK ? 4 : 10
  for (const [name, requests] of loads) {
    const out = join(dir, name)
    rmSync(out, { recursive: true, force: true })
    const storeEnv: Record<string, string> = name === 'allowed-redis' ? { GATE_REDIS_URL: redis.url } : { GATE_STATE_FILE: stateFile(PROJECTS) }
    const gate = await startGate(`gate-${name}`, originUrl, storeEnv, ['--cpu-prof', `--cpu-prof-dir=${out}`])
    const target: Target = { name, port: gate.port, requests, pids: [gate.proc.pid], expect: name === 'denied' ? 403 : 200, gate: gate.proc }
    await warm(gate.port, requests)
    // V8's profile clock and hrtime are both CLOCK_MONOTONIC: only the measured window is read.
    const from = Number(process.hrtime.bigint() / 1000n)
    const cpu0 = cpuSeconds(gate.proc.pid)
    const result = await drive(target, seconds)
    const cpu = cpuSeconds(gate.proc.pid) - cpu0
    const to = Number(process.hrtime.bigint() / 1000n)
    const exited = new Promise(resolve => gate.proc.child.once('exit', resolve))
    gate.proc.child.kill('SIGTERM')
    await exited
    // The largest file is the main thread's (the watchdog thread writes its own).
    const files = readdirSync(out).filter(f => f.endsWith('.cpuprofile')).map(f => join(out, f))
    const file = files.sort((a, b) => statSync(b).size - statSync(a).size)[0]
    if (file === undefined) throw new Error(`no profile written in ${out}`)
    const total = result.requests.total
    writeFileSync(join(out, 'window.json'), JSON.stringify({ fromUs: from, toUs: to, requests: total }) + '\n')
    console.log(`\n${name}: ${file}\n${fmt(total)} requests, ${fmt(cpu * 1e6 / total, 1)} µs CPU per request (user + system), load ${loadavg()[0]!.toFixed(2)}`)
    printProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, from, to, total)
  }
}

/**
 * The functions with the most self time between `from` and `to` (µs, monotonic), in µs per
 * request. A socket write's self time includes the waits of being preempted in it by the process
 * it woke (the load generator): read it from /proc's CPU time, not from here.
 */
function printProfile (p: CpuProfile, from: number, to: number, requests: number): void {
  const self = new Map<number, number>()
  let t = p.startTime
  for (let i = 0; i < p.samples.length; i++) {
    const delta = p.timeDeltas[i] ?? 0
    t += delta
    if (t >= from && t <= to) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + delta)
  }
  const byFunction = new Map<string, number>()
  let busy = 0
  let own = 0
  for (const node of p.nodes) {
    const us = self.get(node.id) ?? 0
    if (us === 0 || node.callFrame.functionName === '(idle)' || node.callFrame.functionName === '(program)') continue
    busy += us
    const url = node.callFrame.url.replace(/^file:\/\//, '').replace(ROOT, '')
    if (url.startsWith('dist/')) own += us
    const key = `${node.callFrame.functionName || '(anonymous)'} ${url}:${node.callFrame.lineNumber + 1}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + us)
  }
  console.log(`sampled busy ${fmt(busy / requests, 1)} µs per request; the gate's own code (dist/) ${fmt(own / requests, 1)} µs (${fmt(100 * own / busy, 1)}%)`)
  for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${fmt(us / requests, 2).padStart(6)} µs ${fmt(100 * us / busy, 1).padStart(5)}%  ${key}`)
}

// ---------------------------------------------------------------------------------------------
// Scale: the allowed-path load with 1, 1,000 and 100,000 allowlisted projects in the (memory)
// store and 10,000 distinct job tokens, each gate warmed with every token first.

async function scale (originUrl: string, origin: number, started: number, load0: number[]): Promise<void> {
  const TOKENS = 10_000
  const sizes = [1, 1_000, 100_000]
  const gates: Array<{ projects: number, gate: Gate, target: Target, memory: Record<string, number> }> = []
  for (const projects of sizes) {
    const gate = await startGate(`gate-${projects}`, originUrl, { GATE_STATE_FILE: stateFile(projects) })
    const memory0 = await gateMemory(gate)
    // 10,000 tokens over the projects; for 100,000 projects the requests name 70,000 of them.
    const requests = workload('b', TOKENS, projects, TOKENS * 7)
    const target: Target = { name: `gate: ${projects} project(s), ${TOKENS} tokens`, port: gate.port, requests, pids: [gate.proc.pid], expect: 200, gate: gate.proc }
    const before = await originCounts(origin)
    await autocannon({ url: `http://127.0.0.1:${gate.port}`, connections: CONNECTIONS, amount: requests.length, requests: loadRequests(requests) })
    const after = await originCounts(origin)
    const memory1 = await gateMemory(gate)
    gates.push({ projects, gate, target, memory: { warmJobCalls: after.job! - before.job!, rssBefore: memory0.rssBytes, rssAfter: memory1.rssBytes, heapBefore: memory0.heapUsedBytes, heapAfter: memory1.heapUsedBytes } })
  }
  const roundLoads: number[] = []
  const jobCalls = new Map<number, number>()
  for (let round = 0; round < ROUNDS; round++) {
    currentRound = round
    for (const g of gates) {
      const before = (await originCounts(origin)).job!
      const s = await measure(g.target)
      jobCalls.set(g.projects, (jobCalls.get(g.projects) ?? 0) + (await originCounts(origin)).job! - before)
      console.error(`round ${round + 1}/${ROUNDS} ${g.target.name}: ${fmt(s.rps)} req/s, ${fmt(s.cpuUsPerReq)} µs CPU/req, load ${s.load1.toFixed(2)}`)
    }
    roundLoads.push(loadavg()[0]!)
  }
  const rows = summarize(gates.map(g => g.target.name), gates[0]!.target.name)
  for (const g of gates) g.gate.proc.child.kill('SIGTERM')
  const { perToken, perCachedProject, perStoredProject } = await cacheMemory(sizes[2]!, TOKENS)
  const result = {
    node: process.version,
    date: new Date().toISOString(),
    quick: QUICK,
    rounds: ROUNDS,
    durationSeconds: DURATION_S,
    loadAverage: { atStart: load0.map(x => Number(x.toFixed(2))), perRound: roundLoads.map(x => Number(x.toFixed(2))) },
    results: rows,
    memory: gates.map(g => ({ projects: g.projects, ...g.memory })),
    jobCallsDuringRounds: Object.fromEntries(jobCalls),
    bytesPerCachedToken: Math.round(perToken),
    bytesPerCachedProject: Math.round(perCachedProject),
    bytesPerStoredProject: Math.round(perStoredProject),
    totalSeconds: Math.round((Date.now() - started) / 1000)
  }
  writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n')
  console.log(`node ${process.version}; ${ROUNDS} interleaved rounds of ${DURATION_S} s, ${CONNECTIONS} connections; load average ${load0[0]!.toFixed(2)} at start, ${roundLoads.map(x => x.toFixed(2)).join(' / ')} after each round`)
  console.log('ratios against the 1-project gate')
  console.log('')
  printTable(rows)
  console.log('')
  for (const g of gates) console.log(`  ${String(g.projects).padStart(6)} projects: warm-up made ${g.memory.warmJobCalls} GET /job calls, the measured rounds ${jobCalls.get(g.projects)}; heap ${fmt(g.memory.heapBefore! / 2 ** 20, 1)} → ${fmt(g.memory.heapAfter! / 2 ** 20, 1)} MiB, RSS ${fmt(g.memory.rssBefore! / 2 ** 20, 1)} → ${fmt(g.memory.rssAfter! / 2 ** 20, 1)} MiB`)
  console.log(`memory (V8 heap used after a full GC, the gate's own caches filled in this process): ${result.bytesPerCachedToken} B per cached job token, ${result.bytesPerCachedProject} B per cached project's grants, ${result.bytesPerStoredProject} B per project in the memory store`)
  console.log(`JSON: ${OUT}; total ${result.totalSeconds} s`)
}

/**
 * Memory of the gate's caches, measured in this process with the gate's own modules, each heap
 * reading after a full GC (node --expose-gc): `tokens` resolved identities in the token cache,
 * `projects` projects in the memory store, and 10,000 of them (the grant cache's bound) cached.
 */
const retained: unknown[] = []

async function cacheMemory (projects: number, tokens: number): Promise<{ perToken: number, perCachedProject: number, perStoredProject: number }> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) {
    console.log('NOTICE: run with node --expose-gc (npm run bench:e2e does) for the memory per cached token and project')
    return { perToken: NaN, perCachedProject: NaN, perStoredProject: NaN }
  }
  const heap = (): number => { gc(); gc(); return process.memoryUsage().heapUsed }
  const h0 = heap()
  const cache = createTokenCache<JobIdentity>({ max: 10_000, ttlMs: 30_000 })
  for (let i = 0; i < tokens; i++) {
    const jobProjectId = 1000000 + (i % 100)
    await cache.get(token('b', i), async () => ({ jobId: 100000 + i, jobProjectId, jobProjectPath: `g500/p${jobProjectId}`, ancestorGroupIds: [500], userId: 7, pipelineId: 100001 + i }))
  }
  const perToken = (heap() - h0) / tokens
  const h1 = heap()
  const store = await createMemoryStore({ file: stateFile(projects) })
  const h2 = heap()
  const grants = createGrantCache({ store })
  const cached = 10_000
  for (let p = 1; p <= cached; p++) await grants.get(p)
  const perCachedProject = (heap() - h2) / cached
  const perStoredProject = (h2 - h1) / projects
  retained.push(cache, store, grants)
  return { perToken, perCachedProject, perStoredProject }
}

try {
  await main()
} finally {
  stopping = true
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
  await (redis as RedisServer | null)?.stop()
}
