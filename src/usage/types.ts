// Least-privilege usage: which policies allowed job-token requests actually used, per accessed
// project, job project and UTC day. The grants store keeps it (src/grants/usage-store.ts);
// recorder.ts writes it in batches off the request path and report.ts reads it.

export type { UsageIncrement, UsageLimits, UsageRow, UsageStore } from '../grants/usage-store.ts'

/**
 * Recorded in place of a policy for a request on a route that declares none and does not skip
 * them (Helm, Debian, the other `authenticate_with` registries): a default-permissions entry
 * allows it, no fine-grained one does (NO_POLICIES_FOR_ENDPOINT). Not a policy name (those are
 * lower-case words), so never suggested.
 */
export const NO_POLICY = '(none)'

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
