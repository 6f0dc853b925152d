// The least-privilege report: per allowlist entry of an accessed project, the policies its jobs
// actually used in a time window and the smallest job_token_policies that would have allowed
// all of it. `suggestPolicies` and `buildUsageReport` are pure; `usageReport` reads the store.

import type { PolicyIndex } from '../catalog/policy-index.ts'
import type { AllowlistEntry } from '../grants/model.ts'
import type { GrantStore } from '../grants/store.ts'
import { nearestEntry } from '../policy/decide.ts'
import { daysBetween, NO_POLICY, type UsageRow } from './types.ts'

export interface EntryUsage {
  readonly target_type: 'project' | 'group'
  readonly target_id: number
  readonly target_path?: string
  readonly default_permissions: boolean
  /** The entry's job_token_policies now. */
  readonly job_token_policies: readonly string[]
  /** Allowed job-token requests attributed to this entry in the window. */
  readonly requests: number
  /** Policy → requests that needed it. */
  readonly used_policies: Readonly<Record<string, number>>
  /** The smallest job_token_policies that allows everything seen (admin_X covers read_X), but requests_without_policies. */
  readonly suggested_job_token_policies: readonly string[]
  /**
   * Requests on routes that declare no job token policies (Helm, Debian, ...): only default
   * permissions allow them, no job_token_policies do. Above 0, the entry needs default permissions.
   */
  readonly requests_without_policies: number
  /** Policies the entry grants that the suggestion leaves out (fine-grained entries only). */
  readonly unused_policies: readonly string[]
  /** Job projects seen through this entry. */
  readonly job_projects: ReadonlyArray<{ readonly id: number, readonly path: string, readonly requests: number }>
}

export interface UsageReport {
  readonly project_id: number
  readonly since: string
  readonly until: string
  readonly entries: readonly EntryUsage[]
  /** Usage by job projects no current entry matches (the entry was removed since). */
  readonly unmatched: ReadonlyArray<{ readonly job_project_id: number, readonly job_project_path: string, readonly requests: number, readonly used_policies: Readonly<Record<string, number>>, readonly requests_without_policies: number }>
  /**
   * Days on which job projects over GATE_USAGE_MAX_JOB_PROJECTS went unrecorded, with their
   * requests: the report misses whatever they used, so its suggestions may be too narrow.
   */
  readonly incomplete_days: ReadonlyArray<{ readonly day: string, readonly dropped_requests: number }>
}

/** The used policies minus any another used policy implies (admin_X implies read_X), sorted. */
export function suggestPolicies (used: Iterable<string>, policies: PolicyIndex): string[] {
  const set = new Set(used)
  const implied = new Set<string>()
  for (const name of set) for (const other of policies.expand([name])) if (other !== name) implied.add(other)
  return [...set].filter(name => !implied.has(name)).sort()
}

export function buildUsageReport (
  projectId: number,
  entries: readonly AllowlistEntry[],
  rows: readonly UsageRow[],
  policies: PolicyIndex,
  window: { sinceMs: number, untilMs: number },
  dropped: Readonly<Record<string, number>> = {}
): UsageReport {
  interface Acc { requests: number, used: Map<string, number>, withoutPolicies: number, jobs: Map<number, { id: number, path: string, requests: number }> }
  const fresh = (): Acc => ({ requests: 0, used: new Map(), withoutPolicies: 0, jobs: new Map() })
  const byEntry = new Map<AllowlistEntry, Acc>()
  const unmatched = new Map<number, Acc & { path: string }>()
  for (const row of rows) {
    const entry = nearestEntry(entries, { jobProjectId: row.jobProjectId, ancestorGroupIds: row.ancestorGroupIds })
    let acc: Acc
    if (entry === null) {
      let u = unmatched.get(row.jobProjectId)
      if (u === undefined) unmatched.set(row.jobProjectId, u = { ...fresh(), path: row.jobProjectPath })
      acc = u
    } else {
      acc = byEntry.get(entry) ?? fresh()
      byEntry.set(entry, acc)
    }
    acc.requests += row.requests
    for (const [policy, n] of Object.entries(row.policies)) {
      if (policy === NO_POLICY) acc.withoutPolicies += n
      else acc.used.set(policy, (acc.used.get(policy) ?? 0) + n)
    }
    const job = acc.jobs.get(row.jobProjectId) ?? { id: row.jobProjectId, path: row.jobProjectPath, requests: 0 }
    job.requests += row.requests
    acc.jobs.set(row.jobProjectId, job)
  }
  const sorted = (m: Map<string, number>): Record<string, number> => Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)))
  return {
    project_id: projectId,
    since: new Date(window.sinceMs).toISOString(),
    until: new Date(window.untilMs).toISOString(),
    entries: entries.map(entry => {
      const acc = byEntry.get(entry) ?? fresh()
      const suggested = suggestPolicies(acc.used.keys(), policies)
      const granted = entry.defaultPermissions ? [] : entry.jobTokenPolicies
      return {
        target_type: entry.targetType,
        target_id: entry.targetId,
        ...(entry.targetPath === undefined ? {} : { target_path: entry.targetPath }),
        default_permissions: entry.defaultPermissions,
        job_token_policies: entry.jobTokenPolicies,
        requests: acc.requests,
        used_policies: sorted(acc.used),
        suggested_job_token_policies: suggested,
        requests_without_policies: acc.withoutPolicies,
        unused_policies: granted.filter(p => !suggested.includes(p)).slice().sort(),
        job_projects: [...acc.jobs.values()].sort((a, b) => b.requests - a.requests || a.id - b.id)
      }
    }),
    unmatched: [...unmatched.entries()].map(([id, u]) => ({ job_project_id: id, job_project_path: u.path, requests: u.requests, used_policies: sorted(u.used), requests_without_policies: u.withoutPolicies })),
    incomplete_days: Object.entries(dropped).filter(([, n]) => n > 0).sort(([a], [b]) => a.localeCompare(b)).map(([day, n]) => ({ day, dropped_requests: n }))
  }
}

/**
 * The report for one accessed project over [sinceMs, now]. Days are UTC buckets, so the window
 * starts at the beginning of sinceMs's day. `policies`: the loaded catalog's, which says which
 * policy implies which. Throws when the store keeps no usage.
 */
export async function usageReport (store: Pick<GrantStore, 'kind' | 'get' | 'readUsage' | 'readDroppedUsage'>, projectId: number, options: { sinceMs: number, nowMs?: number, policies: PolicyIndex, maxDays?: number }): Promise<UsageReport> {
  if (store.readUsage === undefined) throw new TypeError(`the ${store.kind} store does not keep usage`)
  const nowMs = options.nowMs ?? Date.now()
  const { policies } = options
  const days = daysBetween(options.sinceMs, nowMs, options.maxDays ?? 366)
  const [grants, rows, dropped] = await Promise.all([
    store.get(projectId),
    store.readUsage(projectId, days),
    store.readDroppedUsage?.(projectId, days) ?? {}
  ])
  return buildUsageReport(projectId, grants?.entries ?? [], rows, policies, { sinceMs: options.sinceMs, untilMs: nowMs }, dropped)
}

/**
 * The report window from query parameters, for `GET /projects/:id/job_token_scope/usage`:
 * `days` (1 to maxDays, default 30) or `since` (an ISO 8601 date or time). Returns an error
 * message naming the parameter when neither reads.
 */
export function parseUsageWindow (query: URLSearchParams, nowMs: number, maxDays = 90): { sinceMs: number } | { error: string } {
  const DAY = 86_400_000
  const since = query.get('since')
  if (since !== null) {
    const ms = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(since) ? Date.parse(since) : NaN
    if (!Number.isFinite(ms) || ms > nowMs) return { error: 'since must be an ISO 8601 date or time in the past' }
    return { sinceMs: Math.max(ms, nowMs - maxDays * DAY) }
  }
  const raw = query.get('days') ?? '30'
  const days = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN
  if (!(days >= 1 && days <= maxDays)) return { error: `days must be a whole number from 1 to ${maxDays}` }
  return { sinceMs: nowMs - days * DAY }
}
