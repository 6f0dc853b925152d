// wrk as bench:e2e's load generator, where it is installed (Debian's `wrk`): a C program in its
// own process, which spends about 0.6 times the CPU per request that autocannon spends in the
// harness's process (bench/README.md, the eleventh round), on a 2-core machine that also runs
// the origin and the proxy measured.
//
// The request list becomes a data file and a Lua script: every request built once in init()
// (after wrk has set the Host header) and handed out in turn from one cursor per thread; no
// response() function, so wrk reads no headers or bodies into Lua. done() prints one JSON line
// with the counts and the latency percentiles.

import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Req } from './workload.ts'

export interface WrkResult {
  readonly requests: number
  /** Answers with a status above 399 (wrk counts no finer). */
  readonly statusAbove399: number
  /** Connect, read, write and timeout errors. */
  readonly errors: number
  readonly p50Ms: number
  readonly p99Ms: number
}

/**
 * Writes the request list (one request per line: method, path, then header names and values,
 * tab-separated; a Lua function holds at most 65,536 constants, fewer than the scale run's
 * 70,000 requests, so the list is data read in init()) and the Lua script that sends it in turn;
 * returns the script's path.
 */
export function writeWrkScript (dir: string, name: string, requests: readonly Req[]): string {
  const base = join(dir, name.replace(/[^a-z0-9]+/gi, '-'))
  const lines = requests.map(r => {
    const fields = [r.method, r.path, ...Object.entries(r.headers ?? {}).flat()]
    for (const f of fields) if (f === '' || /[\t\r\n]/.test(f)) throw new Error(`wrk load: an empty field, a tab or a line break in ${JSON.stringify(f)}`)
    return fields.join('\t')
  })
  writeFileSync(`${base}.txt`, lines.join('\n') + '\n')
  writeFileSync(`${base}.lua`, `local built = {}
local next = 0
function init (args)
  for line in io.lines(${JSON.stringify(`${base}.txt`)}) do
    local f = {}
    for field in line:gmatch("[^\\t]+") do f[#f + 1] = field end
    local headers = { Host = wrk.headers["Host"] }
    for i = 3, #f - 1, 2 do headers[f[i]] = f[i + 1] end
    built[#built + 1] = wrk.format(f[1], f[2], headers)
  end
end
function request ()
  next = next % #built + 1
  return built[next]
end
function done (summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"statusAbove399":%d,"errors":%d,"p50Us":%d,"p99Us":%d}\\n',
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
`)
  return `${base}.lua`
}

/**
 * One wrk run (one thread, `connections` connections) of `seconds` against `url`, without
 * blocking the harness (it keeps reading the gates' log pipes meanwhile).
 */
export async function runWrk (url: string, script: string, seconds: number, connections: number): Promise<WrkResult> {
  // wrk reads durations in whole seconds.
  const args = ['-t1', `-c${connections}`, `-d${Math.max(1, Math.round(seconds))}s`, '-s', script, url]
  const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const code = await new Promise<number | null>((resolve, reject) => { child.once('error', reject); child.once('exit', resolve) })
  const line = out.split('\n').find(l => l.startsWith('{"requests"'))
  if (code !== 0 || line === undefined) throw new Error(`wrk ${args.join(' ')} failed (exit ${String(code)}): ${out.slice(-2000)}`)
  const r = JSON.parse(line) as { requests: number, statusAbove399: number, errors: number, p50Us: number, p99Us: number }
  return { requests: r.requests, statusAbove399: r.statusAbove399, errors: r.errors, p50Ms: r.p50Us / 1000, p99Ms: r.p99Us / 1000 }
}
