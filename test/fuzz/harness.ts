// Runs fuzz targets (targets.ts) with fast-check and watches three things per target: that no
// exception escapes (the target's own checks turn wrong answers into exceptions too), that no
// single input takes longer than a time limit, and that the heap does not grow with the number
// of inputs. Used by the in-suite runs (test/fuzz/suite-run.ts) and `npm run fuzz`
// (scripts/fuzz.ts), which differ only in counts and limits.
//
// Timing: each input's call is timed alone (generation and checks excluded), in wall-clock time.
// The limit grows with the input's size (a base plus an allowance per KiB the target reports):
// a linear parser may take longer on 64 KiB than on 64 bytes, while a quadratic one outgrows any
// linear allowance long before the largest inputs. An input over its limit is run again up to
// `retimes` times, each retiming counting the smaller of its wall-clock and its process CPU time
// (CPU time leaves out the time the process waited for a core, which on a machine busy with
// other work can be most of it), and fails only when every run is over, with a growing pause
// before each retiming: a GC pause or a descheduled process does not read as a hang. The figure
// reported is the smallest of those runs for the slowest input ("confirmed"), beside the largest
// single wall-clock measurement ("raw").
//
// A hard hang (an input that never returns) cannot be timed from the same thread; a watchdog
// worker sees the input counter stop, writes the target, seed and replay path to stderr and
// kills the process.

import fc from 'fast-check'
import { performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Worker } from 'node:worker_threads'

export interface FuzzTarget<I, P = I, R = unknown> {
  readonly name: string
  /** What is fuzzed and what is asserted, one line. */
  readonly covers: string
  readonly arbitrary: fc.Arbitrary<I>
  /** Whether exec returns a promise. */
  readonly async: boolean
  /** Untimed set-up of one input (e.g. canonicalizing a path before it is matched). */
  prepare?: (input: I) => P
  /** The call under test, timed. Must not throw: documented errors are caught and returned. */
  exec: (prepared: P) => R | Promise<R>
  /** Property checks on the result, untimed; throws on a violation. */
  check?: (prepared: P, result: R, input: I) => void | Promise<void>
  /** A short printable form of an input, for failure and slowest-input reports. */
  show: (input: I) => string
  /** The bytes (or characters) the call reads, for the time limit's allowance per KiB. */
  size: (input: I) => number
}

export interface RunOptions {
  readonly runs: number
  /** Base seed; the target's own seed is derived from it and the target name (targetSeed). */
  readonly seed: number
  /** fast-check replay path (with the same seed): runs only the input(s) on that path. */
  readonly path?: string
  /** Per-input limit in milliseconds, before the allowance for the input's size. */
  readonly timeLimitMs: number
  /** Milliseconds added to the limit per KiB of input (target.size). */
  readonly timePerKibMs: number
  /** Extra timings of an input over the limit before it fails. */
  readonly retimes: number
  /** Sample the heap (after a GC) every this many inputs. */
  readonly heapEvery: number
  /** Largest accepted heap growth over the run, in bytes. */
  readonly heapLimitBytes: number
  /** Stop a target after this long (the run then counts what it did); none by default. */
  readonly stopAfterMs?: number
  /** Print progress lines to stderr. */
  readonly progress?: boolean
}

export interface TargetReport {
  readonly name: string
  readonly seed: number
  readonly runs: number
  /** Inputs executed, retimings and shrinking included. */
  readonly executions: number
  readonly ms: number
  /** Slowest input, after retiming, its size in bytes, its limit and its printable form. */
  readonly maxMs: number
  readonly maxBytes: number
  readonly maxLimitMs: number
  readonly maxInput: string
  /** Largest single measurement, before retiming. */
  readonly maxRawMs: number
  readonly retimed: number
  readonly heapStart: number | null
  readonly heapEnd: number | null
  readonly heapMaxGrowth: number | null
  readonly interrupted: boolean
  /** Set when the target failed: the full report, replay command included. */
  readonly failure: string | null
}

/** A check's verdict that an input broke a property. */
export class PropertyViolation extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'PropertyViolation'
  }
}

class TimeLimitExceeded extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'TimeLimitExceeded'
  }
}

export function violation (condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new PropertyViolation(typeof message === 'string' ? message : message())
}

/** The seed a target runs with: stable for a base seed and a target name. */
export function targetSeed (base: number, name: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193)
  return (base ^ h) | 0
}

/** `gc` when the process was started with --expose-gc, or can still enable it; else null. */
export function exposeGc (): (() => void) | null {
  const g = (globalThis as { gc?: () => void }).gc
  if (typeof g === 'function') return g
  try {
    setFlagsFromString('--expose-gc')
    const fresh = runInNewContext('gc') as unknown
    return typeof fresh === 'function' ? fresh as () => void : null
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------
// Watchdog

const WATCHDOG_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads')
const { writeSync } = require('node:fs')
const shared = new Int32Array(workerData.buffer)
let label = ''
let last = -1
let since = Date.now()
parentPort.on('message', (m) => { label = m })
setInterval(() => {
  const seq = Atomics.load(shared, 0)
  const busy = Atomics.load(shared, 1) === 1
  if (!busy || seq !== last) { last = seq; since = Date.now(); return }
  if (Date.now() - since < workerData.hangMs) return
  const input = Atomics.load(shared, 2)
  writeSync(2, '\\nfuzz watchdog: ' + label.replaceAll('{INPUT}', String(input)).replaceAll('{PATH}', String(input - 1)) + ' has not returned for ' + workerData.hangMs + ' ms: killing the process\\n')
  process.kill(process.pid, 'SIGKILL')
}, 100)
`

export class Watchdog {
  // [executions, busy, inputs]: progress is any execution; inputs number fast-check's runs.
  private readonly shared = new Int32Array(new SharedArrayBuffer(12))
  private readonly worker: Worker

  constructor (hangMs: number) {
    this.worker = new Worker(WATCHDOG_SOURCE, { eval: true, workerData: { buffer: this.shared.buffer, hangMs } })
    this.worker.unref()
  }

  /** What to print if the current input hangs; `{INPUT}` is replaced by the input's number, `{PATH}` by that number - 1. */
  label (text: string): void {
    this.worker.postMessage(text)
  }

  enter (execution: number, input: number): void {
    Atomics.store(this.shared, 0, execution)
    Atomics.store(this.shared, 2, input)
    Atomics.store(this.shared, 1, 1)
  }

  leave (): void {
    Atomics.store(this.shared, 1, 0)
  }

  async close (): Promise<void> {
    await this.worker.terminate()
  }
}

// ---------------------------------------------------------------------------------------------

function describeError (error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`
  return String(error)
}

/** The replay command for a failure. */
export function replayCommand (name: string, baseSeed: number, path: string | null): string {
  return `npm run fuzz -- --target ${name} --seed ${baseSeed}${path === null ? '' : ` --path ${path}`}`
}

/** Runs one target; never throws for a failing input (the report says so). */
export async function runTarget<I, P, R> (target: FuzzTarget<I, P, R>, options: RunOptions, watchdog?: Watchdog): Promise<TargetReport> {
  const seed = targetSeed(options.seed, target.name)
  const gc = exposeGc()
  const limitFor = (bytes: number): number => options.timeLimitMs + options.timePerKibMs * bytes / 1024
  let executions = 0
  let inputs = 0
  let retimed = 0
  let maxMs = 0
  let maxRawMs = 0
  let maxBytes = 0
  let maxLimitMs = 0
  let maxInput = ''
  let heapStart: number | null = null
  let heapEnd: number | null = null
  let heapMaxGrowth: number | null = null
  let heapFailure: string | null = null
  const warmup = Math.min(options.heapEvery, 2000)
  const started = performance.now()
  let lastProgress = started

  watchdog?.label(`target ${target.name}, input #{INPUT} (replay: ${replayCommand(target.name, options.seed, null)} --path {PATH}, when #{INPUT} <= ${options.runs}; a larger number is a shrinking step)`)

  const sampleHeap = (): void => {
    if (gc === null) return
    gc()
    const used = process.memoryUsage().heapUsed
    if (heapStart === null) { heapStart = used; heapMaxGrowth = 0; return }
    heapEnd = used
    heapMaxGrowth = Math.max(heapMaxGrowth ?? 0, used - heapStart)
    if (heapFailure === null && used - heapStart > options.heapLimitBytes) {
      heapFailure = `heap grew by ${mib(used - heapStart)} over ${inputs} inputs (limit ${mib(options.heapLimitBytes)})`
    }
  }

  // `cpu`: also measure process CPU time and count the smaller of the two (retimings only).
  const timeSync = (prepared: P, cpu = false): { ms: number, result: R } => {
    executions++
    watchdog?.enter(executions, inputs)
    const c0 = cpu ? process.cpuUsage() : null
    const t0 = performance.now()
    try {
      const result = target.exec(prepared) as R
      const wall = performance.now() - t0
      return { ms: c0 === null ? wall : Math.min(wall, cpuMs(c0)), result }
    } finally {
      watchdog?.leave()
    }
  }

  const timeAsync = async (prepared: P, cpu = false): Promise<{ ms: number, result: R }> => {
    executions++
    watchdog?.enter(executions, inputs)
    const c0 = cpu ? process.cpuUsage() : null
    const t0 = performance.now()
    try {
      const result = await target.exec(prepared)
      const wall = performance.now() - t0
      return { ms: c0 === null ? wall : Math.min(wall, cpuMs(c0)), result }
    } finally {
      watchdog?.leave()
    }
  }

  const begin = (): void => {
    inputs++
    if (inputs === warmup || (inputs > warmup && inputs % options.heapEvery === 0)) sampleHeap()
    if (options.progress === true && performance.now() - lastProgress > 10_000) {
      lastProgress = performance.now()
      process.stderr.write(`  ${target.name}: ${inputs} inputs, ${((lastProgress - started) / 1000).toFixed(0)} s, max ${maxMs.toFixed(2)} ms\n`)
    }
  }

  /** Records the (retimed) duration of an input; throws when it stays over its limit. */
  const settle = (input: I, ms: number, bytes: number, limit: number): void => {
    if (ms > maxMs) {
      maxMs = ms
      maxBytes = bytes
      maxLimitMs = limit
      maxInput = target.show(input)
    }
    if (ms > limit) throw new TimeLimitExceeded(`one input of ${kib(bytes)} took ${ms.toFixed(2)} ms (the smallest of ${options.retimes + 1} runs, wall-clock or CPU time), over its ${limit.toFixed(2)} ms limit (${options.timeLimitMs} ms + ${options.timePerKibMs} ms per KiB)`)
  }

  const syncBody = (input: I): void => {
    begin()
    const prepared = target.prepare === undefined ? input as unknown as P : target.prepare(input)
    const bytes = target.size(input)
    const limit = limitFor(bytes)
    let { ms, result } = timeSync(prepared)
    maxRawMs = Math.max(maxRawMs, ms)
    for (let k = 0; k < options.retimes && ms > limit; k++, retimed++) {
      pause(k)
      ms = Math.min(ms, timeSync(prepared, true).ms)
    }
    settle(input, ms, bytes, limit)
    void target.check?.(prepared, result, input)
  }

  const asyncBody = async (input: I): Promise<void> => {
    begin()
    const prepared = target.prepare === undefined ? input as unknown as P : target.prepare(input)
    const bytes = target.size(input)
    const limit = limitFor(bytes)
    let { ms, result } = await timeAsync(prepared)
    maxRawMs = Math.max(maxRawMs, ms)
    for (let k = 0; k < options.retimes && ms > limit; k++, retimed++) {
      pause(k)
      ms = Math.min(ms, (await timeAsync(prepared, true)).ms)
    }
    settle(input, ms, bytes, limit)
    await target.check?.(prepared, result, input)
  }

  const params: fc.Parameters<[I]> = {
    seed,
    numRuns: options.runs,
    ...(options.path !== undefined ? { path: options.path } : {}),
    ...(options.stopAfterMs !== undefined ? { interruptAfterTimeLimit: options.stopAfterMs } : {})
  }
  const details = target.async
    ? await fc.check(fc.asyncProperty(target.arbitrary, asyncBody), params)
    : fc.check(fc.property(target.arbitrary, syncBody), params)
  sampleHeap()
  const ms = performance.now() - started

  let failure: string | null = null
  if (details.failed) {
    const input = details.counterexample === null ? '(none)' : target.show(details.counterexample[0])
    failure = [
      `fuzz target ${target.name} failed after ${details.numRuns} inputs (target seed ${details.seed}, shrunk ${details.numShrinks} times)`,
      `  replay: ${replayCommand(target.name, options.seed, details.counterexamplePath)}`,
      `  input:  ${input}`,
      `  error:  ${describeError(details.errorInstance).split('\n').join('\n          ')}`
    ].join('\n')
  } else if (heapFailure !== null) {
    failure = `fuzz target ${target.name}: ${heapFailure} (seed ${options.seed})`
  }
  return {
    name: target.name,
    seed,
    runs: details.numRuns,
    executions,
    ms,
    maxMs,
    maxBytes,
    maxLimitMs,
    maxInput,
    maxRawMs,
    retimed,
    heapStart,
    heapEnd,
    heapMaxGrowth,
    interrupted: details.interrupted,
    failure
  }
}

const SLEEPER = new Int32Array(new SharedArrayBuffer(4))

/**
 * Sleeps 5, 10, 20... ms before retiming k: a collection or another process that made one run
 * slow has then usually finished, so several runs in a row are not caught by the same burst.
 */
function pause (k: number): void {
  Atomics.wait(SLEEPER, 0, 0, 5 * 2 ** k)
}

/** Process CPU time (user and system, all threads) since `from`, in milliseconds. */
function cpuMs (from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from)
  return (d.user + d.system) / 1000
}

function kib (bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`
}

export function mib (bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`
}

/** One line per target: inputs, time, slowest input, heap. */
export function formatReport (r: TargetReport): string {
  const heap = r.heapMaxGrowth === null ? 'heap not sampled (no gc)' : `heap growth ${mib((r.heapEnd ?? r.heapStart ?? 0) - (r.heapStart ?? 0))} (max ${mib(r.heapMaxGrowth)})`
  return `${r.name.padEnd(16)} ${String(r.runs).padStart(9)} inputs  ${(r.ms / 1000).toFixed(1).padStart(6)} s  max ${r.maxMs.toFixed(2)} ms on ${kib(r.maxBytes)} (limit ${r.maxLimitMs.toFixed(1)} ms; raw ${r.maxRawMs.toFixed(2)} ms, ${r.retimed} retimed)  ${heap}${r.interrupted ? ' (stopped by time limit)' : ''}`
}
