// Least-privilege usage: which policies allowed job-token requests actually used, per accessed
// project, job project and UTC day. Kept by the grants store (memory or Redis) through the
// optional methods below, written in batches off the request path (recorder.ts) and read by
// the report (report.ts).

/** What one batch adds for one (accessed project, day, job project). */
export interface UsageIncrement {
  readonly accessedProjectId: number
  /** UTC day, `YYYY-MM-DD`. */
  readonly day: string
  readonly jobProjectId: number
  readonly jobProjectPath: string
  /** The job project's ancestor groups, nearest first: attributes usage to group entries. */
  readonly ancestorGroupIds: readonly number[]
  readonly requests: number
  /** Policy → requests that needed it (a skip-policies route adds requests but no policy). */
  readonly policies: Readonly<Record<string, number>>
}

/** What a store returns: the sum of every increment for that key. */
export type UsageRow = UsageIncrement

export interface UsageLimits {
  /** Job projects recorded per accessed project and day; increments for more are dropped. */
  readonly maxJobProjects: number
  readonly retentionDays: number
}

/** Optional methods of a GrantStore (src/grants/store.ts). */
export interface UsageBackend {
  /** Adds a batch; resolves with how many increments were dropped by the cap. */
  recordUsage (batch: readonly UsageIncrement[], limits: UsageLimits): Promise<{ dropped: number }>
  /** The rows of one accessed project for the given days. */
  readUsage (accessedProjectId: number, days: readonly string[]): Promise<UsageRow[]>
}

export function dayOf (ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

/** The UTC days from sinceMs to nowMs, oldest first, at most maxDays. */
export function daysBetween (sinceMs: number, nowMs: number, maxDays: number): string[] {
  const DAY = 86_400_000
  const end = Math.floor(nowMs / DAY)
  const start = Math.max(Math.floor(sinceMs / DAY), end - maxDays + 1)
  const days: string[] = []
  for (let d = start; d <= end; d++) days.push(dayOf(d * DAY))
  return days
}
