// Records, per (accessed project, day, job project), the policies allowed job-token requests
// used. Off the request path: record() only adds to an in-memory batch (bounded); a timer
// writes the batch to the store; a failed write is counted and dropped, never thrown, and its
// requests are written with the next batch as dropped ones, so the report names those days
// incomplete.

import type { UsageDrop } from '../grants/usage-store.ts'
import { dayOf, type UsageIncrement, type UsageLimits, type UsageStore } from './types.ts'

export interface UsageRecorderOptions {
  /** Where batches go; without `recordUsage` (a store that keeps no usage, or recording off) nothing is recorded. */
  readonly store: Partial<Pick<UsageStore, 'recordUsage'>>
  readonly limits: UsageLimits
  readonly flushIntervalMs: number
  /**
   * Distinct keys held between flushes; more are dropped, their requests counted per accessed
   * project and day (at most ten times as many counts) and written as the cap's, so the report
   * names those days incomplete. Default 10 000.
   */
  readonly maxPending?: number
  readonly now?: () => number
  /** Records made since the last flush, handed on at each flush (not per request: the hot path stays a map update). */
  readonly onRecorded?: (n: number) => void
  readonly onDropped?: (n: number) => void
  readonly onWriteFailed?: (err: unknown) => void
  readonly onFlushed?: () => void
}

export interface UsageRecorder {
  /** Hot path: a map update, no I/O. */
  record (accessedProjectId: number, job: { jobProjectId: number, jobProjectPath: string, ancestorGroupIds: readonly number[] }, policies: readonly string[]): void
  /** Writes what is pending now; resolves when the write ended (it never rejects). */
  flush (): Promise<void>
  close (): Promise<void>
}

const DAY_MS = 86_400_000

type Pending = { -readonly [K in keyof UsageIncrement]: UsageIncrement[K] }

/** Recording switched off (GATE_USAGE_RECORDING=false): records nothing, holds no timer. */
export const NO_USAGE_RECORDING: UsageRecorder = Object.freeze({
  record () {},
  flush: async () => {},
  close: async () => {}
})

export function createUsageRecorder (options: UsageRecorderOptions): UsageRecorder {
  const { store } = options
  const now = options.now ?? Date.now
  const maxPending = options.maxPending ?? 10_000
  // A count is a number, not an entry: ten times as many fit in less memory than the batch.
  const maxUnrecorded = maxPending * 10
  // Hot path: keyed by day, then accessed project, then job project: lookups of a string the gate
  // reuses and of small integers, where a joined key was a new string to build and hash per request.
  type Entry = Pending & { policies: Record<string, number> }
  let pending = new Map<string, Map<number, Map<number, Entry>>>()
  let pendingSize = 0
  // Requests dropped because the batch was full, by day and accessed project: a job that reaches
  // many projects (a group entry, projects whose inbound scope is off) can fill the batch, and
  // without these the report read every other project's day as complete.
  let unrecorded = new Map<string, Map<number, number>>()
  let unrecordedSize = 0
  let writing: Promise<void> = Promise.resolve()
  const supported = store.recordUsage !== undefined
  // Hot path helpers: the UTC day string is built once per day, not per request (a Date and an
  // ISO string cost more than the rest of record()), and the records counter is handed on once per
  // flush instead of once per request.
  let dayStart = 0
  let dayEnd = 0
  let day = ''
  const today = (ms: number): string => {
    if (ms < dayStart || ms >= dayEnd) {
      day = dayOf(ms)
      dayStart = Math.floor(ms / DAY_MS) * DAY_MS
      dayEnd = dayStart + DAY_MS
    }
    return day
  }
  let recorded = 0

  /** Requests of (day, accessed project) that could not be kept, to be written as the cap's. */
  function unrecord (day: string, accessedProjectId: number, requests: number): void {
    let byAccessed = unrecorded.get(day)
    if (byAccessed === undefined) unrecorded.set(day, byAccessed = new Map())
    const n = byAccessed.get(accessedProjectId)
    if (n !== undefined) byAccessed.set(accessedProjectId, n + requests)
    else if (unrecordedSize < maxUnrecorded) {
      byAccessed.set(accessedProjectId, requests)
      unrecordedSize++
    }
  }

  async function write (batch: UsageIncrement[], drops: UsageDrop[]): Promise<void> {
    try {
      const { dropped } = await store.recordUsage!(batch, options.limits, drops)
      if (dropped > 0) options.onDropped?.(dropped)
      options.onFlushed?.()
    } catch (err) {
      options.onWriteFailed?.(err)
      // Lost, wholly or in part: the next write names their days incomplete, or an entry could be
      // narrowed on a report that silently misses them.
      for (const e of batch) unrecord(e.day, e.accessedProjectId, e.requests)
      for (const d of drops) unrecord(d.day, d.accessedProjectId, d.requests)
    }
  }

  function flush (): Promise<void> {
    if (recorded > 0) {
      options.onRecorded?.(recorded)
      recorded = 0
    }
    if ((pendingSize === 0 && unrecordedSize === 0) || !supported) return writing
    const batch: UsageIncrement[] = []
    for (const byAccessed of pending.values()) for (const byJob of byAccessed.values()) for (const entry of byJob.values()) batch.push(entry)
    const drops: UsageDrop[] = []
    for (const [day, byAccessed] of unrecorded) for (const [accessedProjectId, requests] of byAccessed) drops.push({ accessedProjectId, day, requests })
    pending = new Map()
    pendingSize = 0
    unrecorded = new Map()
    unrecordedSize = 0
    writing = writing.then(() => write(batch, drops))
    return writing
  }

  const timer = setInterval(() => { void flush() }, options.flushIntervalMs)
  timer.unref()

  return {
    record (accessedProjectId, job, policies) {
      if (!supported) return
      const day = today(now())
      let p = pending.get(day)?.get(accessedProjectId)?.get(job.jobProjectId)
      if (p === undefined) {
        // A dropped record builds nothing: the levels are made only for an entry that is kept.
        if (pendingSize >= maxPending) {
          options.onDropped?.(1)
          unrecord(day, accessedProjectId, 1)
          return
        }
        let byAccessed = pending.get(day)
        if (byAccessed === undefined) pending.set(day, byAccessed = new Map())
        let byJob = byAccessed.get(accessedProjectId)
        if (byJob === undefined) byAccessed.set(accessedProjectId, byJob = new Map())
        p = { accessedProjectId, day, jobProjectId: job.jobProjectId, jobProjectPath: job.jobProjectPath, ancestorGroupIds: job.ancestorGroupIds, requests: 0, policies: {} }
        byJob.set(job.jobProjectId, p)
        pendingSize++
      }
      p.requests++
      for (const policy of policies) p.policies[policy] = (p.policies[policy] ?? 0) + 1
      recorded++
    },
    flush,
    async close () {
      clearInterval(timer)
      await flush()
    }
  }
}
