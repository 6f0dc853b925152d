// Usage in Redis, next to the grants: one hash per accessed project and day, in the project's
// hash-tag slot (`<prefix>:{p:<id>}:usage:<YYYY-MM-DD>`), expiring after the retention:
//   n                      job projects recorded (capped)
//   j:<job project>        {"p": path, "a": [ancestor group ids]}
//   r:<job project>        requests
//   u:<job project>:<pol>  requests that needed policy <pol>
//   d                      requests of job projects over the cap, or that the recorder could not
//                          keep (its pending batch full), not recorded
// One script call per (project, day, job project) adds an increment atomically and enforces
// the cap.

import type { Cluster, Redis } from 'ioredis'
import type { UsageRow, UsageStore } from './usage-store.ts'
import { refuseOver } from './redis-bounds.ts'
import { script } from './redis-acl.ts'

// KEYS[1] usage hash. ARGV: cap, ttl seconds, job project id, meta JSON, requests, then policy/count pairs.
const RECORD_SCRIPT = `
local jf = 'j:' .. ARGV[3]
if redis.call('HEXISTS', KEYS[1], jf) == 0 then
  local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
  if n >= tonumber(ARGV[1]) then
    redis.call('HINCRBY', KEYS[1], 'd', ARGV[5])
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    return 0
  end
  redis.call('HINCRBY', KEYS[1], 'n', 1)
end
redis.call('HSET', KEYS[1], jf, ARGV[4])
redis.call('HINCRBY', KEYS[1], 'r:' .. ARGV[3], ARGV[5])
for i = 6, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], 'u:' .. ARGV[3] .. ':' .. ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
`

// KEYS[1] usage hash: HGETALL, once the hash is measured in Redis (MEMORY USAGE of all its fields,
// which copies none; counting them in Lua copied them, and a 64 MiB one held Redis for seconds);
// a hash past MAX_VALUE_BYTES fails the read. A day's usage of a project is far less.
const READ_SCRIPT = `
${refuseOver("redis.call('MEMORY', 'USAGE', KEYS[1], 'SAMPLES', 0) or 0", "KEYS[1] .. ' holds'")}return redis.call('HGETALL', KEYS[1])
`

// KEYS[1] usage hash: HGET of `d`, measured first.
const READ_DROPPED_SCRIPT = `
${refuseOver("redis.call('HSTRLEN', KEYS[1], 'd')", "KEYS[1] .. ' holds a d of'")}return redis.call('HGET', KEYS[1], 'd')
`

interface UsageScripts {
  jtgUsage (key: string, ...args: string[]): Promise<number>
  jtgUsageRead (key: string): Promise<string[]>
  jtgUsageDropped (key: string): Promise<string | null>
}

/** `grantsKey(id)` is the project's grants key; the usage key shares its hash tag. */
export function createRedisUsage (client: Redis | Cluster, grantsKey: (projectId: number) => string): UsageStore {
  client.defineCommand('jtgUsage', { numberOfKeys: 1, lua: script(RECORD_SCRIPT) })
  client.defineCommand('jtgUsageRead', { numberOfKeys: 1, lua: script(READ_SCRIPT) })
  client.defineCommand('jtgUsageDropped', { numberOfKeys: 1, lua: script(READ_DROPPED_SCRIPT) })
  const scripts = client as unknown as UsageScripts
  const key = (projectId: number, day: string): string => grantsKey(projectId).replace(/:grants$/, `:usage:${day}`)

  return {
    async recordUsage (batch, limits, unrecorded = []) {
      // Requests the recorder could not keep count as the cap's do (`d`): the day is incomplete.
      // Written beside the batch, so that one failing does not keep the other from the store.
      const ttl = String(limits.retentionDays * 86_400)
      const [results] = await Promise.all([
        Promise.all(batch.map(inc => {
          const pairs = Object.entries(inc.policies).flatMap(([policy, n]) => [policy, String(n)])
          const meta = JSON.stringify({ p: inc.jobProjectPath, a: inc.ancestorGroupIds })
          return scripts.jtgUsage(key(inc.accessedProjectId, inc.day), String(limits.maxJobProjects), ttl, String(inc.jobProjectId), meta, String(inc.requests), ...pairs)
        })),
        Promise.all(unrecorded.map(async drop => {
          const k = key(drop.accessedProjectId, drop.day)
          const written = await client.multi().hincrby(k, 'd', drop.requests).expire(k, ttl).exec()
          const failed = written?.find(([err]) => err !== null)?.[0]
          if (failed !== undefined && failed !== null) throw failed
        }))
      ])
      return { dropped: results.filter(r => Number(r) !== 1).length }
    },
    async readUsage (accessedProjectId, days) {
      const rows: UsageRow[] = []
      const hashes = await Promise.all(days.map(async day => await scripts.jtgUsageRead(key(accessedProjectId, day))))
      days.forEach((day, i) => {
        // One pass over the hash: fields are grouped by job project.
        const jobs = new Map<string, { meta?: string, requests: number, policies: Record<string, number> }>()
        const of = (job: string): { meta?: string, requests: number, policies: Record<string, number> } => {
          let j = jobs.get(job)
          if (j === undefined) jobs.set(job, j = { requests: 0, policies: {} })
          return j
        }
        const hash = hashes[i] ?? []
        for (let f = 0; f < hash.length; f += 2) {
          const field = hash[f]!
          const value = hash[f + 1]!
          if (field.startsWith('j:')) of(field.slice(2)).meta = value
          else if (field.startsWith('r:')) of(field.slice(2)).requests = Number(value)
          else if (field.startsWith('u:')) {
            const sep = field.indexOf(':', 2)
            if (sep !== -1) of(field.slice(2, sep)).policies[field.slice(sep + 1)] = Number(value)
          }
        }
        for (const [job, j] of jobs) {
          if (j.meta === undefined) continue
          let meta: { p?: unknown, a?: unknown }
          try {
            meta = JSON.parse(j.meta) as { p?: unknown, a?: unknown }
          } catch {
            continue
          }
          rows.push({
            accessedProjectId,
            day,
            jobProjectId: Number(job),
            jobProjectPath: typeof meta.p === 'string' ? meta.p : '',
            ancestorGroupIds: Array.isArray(meta.a) ? meta.a.filter((n): n is number => typeof n === 'number') : [],
            requests: j.requests,
            policies: j.policies
          })
        }
      })
      return rows
    },
    async readDroppedUsage (accessedProjectId, days) {
      const counts = await Promise.all(days.map(async day => await scripts.jtgUsageDropped(key(accessedProjectId, day))))
      const out: Record<string, number> = {}
      days.forEach((day, i) => {
        const n = Number(counts[i] ?? 0)
        if (n > 0) out[day] = n
      })
      return out
    }
  }
}
