// Where log lines go: standard output (pino) and standard error (Node's warnings, NODE_DEBUG,
// anything else that writes there), written so that a reader going away or stalling never
// reaches the gate. A line that cannot be written is dropped and counted
// (`job_token_gate_log_lines_dropped_total{stream,reason}`); it never throws into the caller,
// never crashes the process and never blocks the event loop.
//
// Why not pino's default destination (`pino.destination`, sonic-boom): with `sync: false` it
// registers a synchronous flush on process exit, and sonic-boom's flushSync retries a failed
// write forever, sleeping 100 ms between attempts (only EAGAIN/EBUSY consult `retryEAGAIN`).
// When the reader of stdout has gone, `process.exit()` enters that loop on EPIPE and never
// returns: SIGTERM no longer ends the process. With `sync: true` every line is a write(2) on the
// event loop, which waits on a stalled reader. pino's own EPIPE handling turns `write` into a
// no-op, so lost lines would go uncounted. Node's stream for the descriptor does what is needed:
// pipes and sockets are written without blocking (libuv, O_NONBLOCK), each write reports its
// outcome through its callback, and nothing runs at exit.

import type { Writable } from 'node:stream'

export const LOG_STREAMS = ['stdout', 'stderr'] as const
export type LogStreamName = typeof LOG_STREAMS[number]

/** `write_error`: the write failed (EPIPE: the reader went away). `backlog`: the reader is not keeping up and the unwritten backlog is full. */
export const DROP_REASONS = ['write_error', 'backlog'] as const
export type DropReason = typeof DROP_REASONS[number]

export type DropCounts = Record<DropReason, number>

/** Unwritten bytes kept per stream while the reader is slow; beyond this, lines are dropped. */
export const DEFAULT_MAX_BACKLOG_BYTES = 1024 * 1024

/** How long a log line of a busy log may wait for others to be written with it (one write per batch). */
export const DEFAULT_BATCH_MS = 5

/** A batch of this many lines or more makes the next one, if it follows within the window, wait for it. */
const BUSY_LINES = 4

/** A batch holding this many characters is written at once, without waiting for its window to end. */
const BATCH_CHARS = 64 * 1024

/** Errors after which nothing will ever be written: the reader or the descriptor is gone. */
const FINAL_ERRORS: ReadonlySet<string> = new Set(['EPIPE', 'ECONNRESET', 'EBADF', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END'])

const processDrops: Record<LogStreamName, DropCounts> = {
  stdout: { write_error: 0, backlog: 0 },
  stderr: { write_error: 0, backlog: 0 }
}

/** Lines dropped on this process's stdout and stderr so far (read by the metrics at scrape time). */
export function logLinesDropped (): Readonly<Record<LogStreamName, Readonly<DropCounts>>> {
  return processDrops
}

type WriteCallback = (err?: Error | null) => void

export interface LogOutput {
  /**
   * Writes one line (one call: one line, as pino writes). Never throws, never blocks; a line that
   * cannot be written is counted and dropped. Same signature as Writable.write.
   */
  write (chunk: string | Uint8Array, encoding?: BufferEncoding | WriteCallback, callback?: WriteCallback): boolean
  /** Resolves true once every accepted line is written or dropped, false if timeoutMs passes first. */
  flush (timeoutMs: number): Promise<boolean>
  /** Lines accepted and not yet written or dropped. */
  readonly pending: () => number
  readonly dropped: () => Readonly<DropCounts>
}

export interface LogOutputOptions {
  readonly maxBacklogBytes?: number
  /** Where drops are counted. Default: this process's counters for the stream's name. */
  readonly counters?: DropCounts
  /** Write the batch when the process exits (the process's stdout and stderr). */
  readonly uncorkOnExit?: boolean
  /** Longest time a line of a busy log waits to be written with the lines after it. Default DEFAULT_BATCH_MS. */
  readonly batchMs?: number
}

/**
 * A log output on `stream` (process.stdout, process.stderr, or any Writable). Adds an 'error'
 * listener to the stream so a failed write cannot become an uncaught exception; every line's
 * fate is known from its own write callback.
 */
export function createLogOutput (stream: Writable, name: LogStreamName, options: LogOutputOptions = {}): LogOutput {
  const maxBacklog = options.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES
  const counters = options.counters ?? processDrops[name]
  // The stream's own write, kept before routeStreamThrough may replace it.
  const streamWrite = stream.write.bind(stream) as (chunk: string | Uint8Array, encoding: BufferEncoding | undefined, cb: WriteCallback) => boolean
  let final = false
  let pending = 0
  const waiters: Array<() => void> = []
  // Hot path: one decision line per request. The lines of a batch are joined into one string and
  // written in one write(2), instead of one stream write each: every line went through the
  // stream's buffering (a buffered entry and a callback per line), and every write(2) also wakes
  // the reader; under load that was most of the decision log's cost (bench/README.md). A quiet
  // log's batch is the lines of one event-loop turn, written as the turn ends; once batches hold
  // BUSY_LINES lines or more, a batch stays open for batchMs, so a loaded gate writes a few
  // hundred times a second whatever its request rate. A batch over BATCH_CHARS goes at once;
  // flush() and the process's exit write it at once. The batch counts in the backlog bound. A
  // line written with a callback (pino passes none) is written on its own, after the batch before
  // it, so its fate reaches its callback.
  const batchMs = options.batchMs ?? DEFAULT_BATCH_MS
  let batch = ''
  let batchLines = 0
  let lastBatchAt = -Infinity
  let lastBatchLines = 0
  // One timer, re-armed per batch; it never holds the process open.
  let timer: NodeJS.Timeout | null = null
  const writeBatch = (): void => {
    if (batchLines === 0) return
    const text = batch
    const lines = batchLines
    batch = ''
    batchLines = 0
    lastBatchAt = performance.now()
    lastBatchLines = lines
    try {
      streamWrite(text, undefined, err => { settled(err, lines) })
    } catch (err) {
      // A synchronous failure: the callback is not called.
      settled(err as Error, lines)
    }
  }
  const openBatch = (): void => {
    if (lastBatchLines < BUSY_LINES || performance.now() - lastBatchAt >= batchMs) {
      setImmediate(writeBatch)
    } else if (timer === null) {
      timer = setTimeout(writeBatch, batchMs).unref()
    } else {
      timer.refresh()
    }
  }
  // process.exit() skips the event loop: the batch goes out in the exit handler, written as any
  // other line (without blocking; a full pipe drops it).
  if (options.uncorkOnExit === true) process.once('exit', writeBatch)

  // Errors are counted by the callbacks below; the event only must not go unhandled.
  stream.on('error', (err: NodeJS.ErrnoException) => { if (FINAL_ERRORS.has(err.code ?? '')) final = true })

  const settled = (err: Error | null | undefined, lines = 1): void => {
    pending -= lines
    if (err !== null && err !== undefined) {
      counters.write_error += lines
      if (FINAL_ERRORS.has((err as NodeJS.ErrnoException).code ?? '')) final = true
    }
    if (pending === 0 && waiters.length > 0) for (const wake of waiters.splice(0)) wake()
  }
  const dropped = (reason: DropReason, callback: WriteCallback | undefined): void => {
    counters[reason]++
    if (callback !== undefined) process.nextTick(callback, Object.assign(new Error(`log line dropped (${reason})`), { code: 'ERR_LOG_LINE_DROPPED' }))
  }

  return {
    write (chunk, encoding, callback) {
      const cb = typeof encoding === 'function' ? encoding : callback
      const enc = typeof encoding === 'function' ? undefined : encoding
      if (final || stream.destroyed || stream.writableEnded) {
        dropped('write_error', cb)
        return true
      }
      if (stream.writableLength + batch.length >= maxBacklog) {
        dropped('backlog', cb)
        return false
      }
      pending++
      if (cb === undefined && typeof chunk === 'string') {
        batch += chunk
        if (batchLines++ === 0) openBatch()
        if (batch.length >= BATCH_CHARS) writeBatch()
        return true
      }
      writeBatch()
      try {
        return streamWrite(chunk, enc, err => {
          settled(err)
          cb?.(err)
        })
      } catch (err) {
        // A synchronous failure: the callback is not called.
        settled(err as Error)
        return true
      }
    },
    flush (timeoutMs) {
      writeBatch()
      if (pending === 0) return Promise.resolve(true)
      return new Promise(resolve => {
        const wake = (): void => {
          clearTimeout(timer)
          resolve(true)
        }
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(wake), 1)
          resolve(false)
        }, timeoutMs)
        waiters.push(wake)
      })
    },
    pending: () => pending,
    dropped: () => ({ ...counters })
  }
}

const stdio = new Map<LogStreamName, LogOutput>()

/** The process's output on stdout or stderr: one per stream, created on first use. */
export function stdioOutput (name: LogStreamName): LogOutput {
  let output = stdio.get(name)
  if (output === undefined) {
    output = createLogOutput(name === 'stdout' ? process.stdout : process.stderr, name, { uncorkOnExit: true })
    stdio.set(name, output)
  }
  return output
}

/**
 * Sends every write to `stream` (console, Node's warnings, NODE_DEBUG, libraries) through
 * `output`, so none of them can crash the process or grow an unbounded backlog. For the `serve`
 * process only: it changes a process-wide object.
 */
export function routeStreamThrough (stream: Writable, output: LogOutput): void {
  if (stream.write === output.write) return
  stream.write = output.write as Writable['write']
}

/** Waits for the lines still being written on stdout and stderr, at most timeoutMs. */
export async function flushStdio (timeoutMs: number): Promise<boolean> {
  const results = await Promise.all([...stdio.values()].map(o => o.flush(timeoutMs)))
  return results.every(Boolean)
}
