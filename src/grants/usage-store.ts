// Least-privilege usage as the grants stores keep it: which policies allowed job-token requests
// used, per accessed project, job project and UTC day. Both shipped stores keep it beside the
// grants (usage-memory.ts, usage-redis.ts: the same Redis connection and hash-tag slot), which
// is why it lives here; src/usage/ records it (recorder.ts) and reports on it (report.ts).

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

/**
 * Requests of one accessed project and day that the gate could not record at all (its pending
 * batch was full): kept with the cap's count, so the report names the day incomplete.
 */
export interface UsageDrop {
  readonly accessedProjectId: number
  /** UTC day, `YYYY-MM-DD`. */
  readonly day: string
  readonly requests: number
}

/** What a store returns: the sum of every increment for that key. */
export type UsageRow = UsageIncrement

export interface UsageLimits {
  /** Job projects recorded per accessed project and day; increments for more are dropped. */
  readonly maxJobProjects: number
  readonly retentionDays: number
}

/** Usage recording and reading; a GrantStore may implement it too (both shipped stores do). */
export interface UsageStore {
  /**
   * Adds a batch, and the requests the recorder could not keep (`unrecorded`, counted as the cap's
   * are); resolves with how many increments were dropped by the cap.
   */
  recordUsage (batch: readonly UsageIncrement[], limits: UsageLimits, unrecorded?: readonly UsageDrop[]): Promise<{ dropped: number }>
  /** The rows of one accessed project for the given days. */
  readUsage (accessedProjectId: number, days: readonly string[]): Promise<UsageRow[]>
  /**
   * Requests the cap left out, by day (days without any are absent): the report says its days
   * are incomplete, so that nobody narrows an entry on usage it could not keep.
   */
  readDroppedUsage (accessedProjectId: number, days: readonly string[]): Promise<Record<string, number>>
}
