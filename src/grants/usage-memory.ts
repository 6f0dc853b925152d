// Usage kept in process memory, for the memory grants store (volatile: not in its state file).

import type { UsageIncrement, UsageRow, UsageStore } from './usage-store.ts'

interface Cell { jobProjectPath: string, ancestorGroupIds: readonly number[], requests: number, policies: Map<string, number> }

export function createMemoryUsage (): UsageStore {
  // accessed project → day → job project → cell
  const data = new Map<number, Map<string, Map<number, Cell>>>()
  // accessed project → day → requests the cap left out
  const dropped = new Map<number, Map<string, number>>()

  function add (inc: UsageIncrement, maxJobProjects: number): boolean {
    let days = data.get(inc.accessedProjectId)
    if (days === undefined) data.set(inc.accessedProjectId, days = new Map())
    let jobs = days.get(inc.day)
    if (jobs === undefined) days.set(inc.day, jobs = new Map())
    let cell = jobs.get(inc.jobProjectId)
    if (cell === undefined) {
      if (jobs.size >= maxJobProjects) {
        addDropped(inc.accessedProjectId, inc.day, inc.requests)
        return false
      }
      jobs.set(inc.jobProjectId, cell = { jobProjectPath: inc.jobProjectPath, ancestorGroupIds: inc.ancestorGroupIds, requests: 0, policies: new Map() })
    }
    cell.jobProjectPath = inc.jobProjectPath
    cell.ancestorGroupIds = inc.ancestorGroupIds
    cell.requests += inc.requests
    for (const [policy, n] of Object.entries(inc.policies)) cell.policies.set(policy, (cell.policies.get(policy) ?? 0) + n)
    return true
  }

  function prune (days: Map<string, unknown>, retentionDays: number): void {
    const oldest = new Date(Date.now() - retentionDays * 86_400_000).toISOString().slice(0, 10)
    for (const day of days.keys()) if (day < oldest) days.delete(day)
  }

  function addDropped (accessedProjectId: number, day: string, requests: number): void {
    let byDay = dropped.get(accessedProjectId)
    if (byDay === undefined) dropped.set(accessedProjectId, byDay = new Map())
    byDay.set(day, (byDay.get(day) ?? 0) + requests)
  }

  return {
    async recordUsage (batch, limits, unrecorded = []) {
      let droppedNow = 0
      for (const inc of batch) if (!add(inc, limits.maxJobProjects)) droppedNow++
      for (const drop of unrecorded) addDropped(drop.accessedProjectId, drop.day, drop.requests)
      for (const days of data.values()) prune(days, limits.retentionDays)
      for (const days of dropped.values()) prune(days, limits.retentionDays)
      return { dropped: droppedNow }
    },
    async readUsage (accessedProjectId, days) {
      const rows: UsageRow[] = []
      const byDay = data.get(accessedProjectId)
      for (const day of days) {
        for (const [jobProjectId, cell] of byDay?.get(day) ?? []) {
          rows.push({ accessedProjectId, day, jobProjectId, jobProjectPath: cell.jobProjectPath, ancestorGroupIds: cell.ancestorGroupIds, requests: cell.requests, policies: Object.fromEntries(cell.policies) })
        }
      }
      return rows
    },
    async readDroppedUsage (accessedProjectId, days) {
      const byDay = dropped.get(accessedProjectId)
      const out: Record<string, number> = {}
      for (const day of days) {
        const n = byDay?.get(day) ?? 0
        if (n > 0) out[day] = n
      }
      return out
    }
  }
}
