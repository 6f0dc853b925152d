// The load of the end-to-end benchmarks (bench/e2e.ts, bench/instructions.ts): a mix of the
// catalog routes a CI job calls with its token, on projects whose allowlists hold the jobs' group.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ProjectGrants } from '../../src/grants/model.ts'
import { createRedisStore } from '../../src/grants/redis-store.ts'
import { startRedis, type RedisServer } from '../../test/helpers/redis.ts'

export interface Req { method: string, path: string, headers?: Record<string, string> }

/** The policies every benchmark allowlist entry grants: the load's routes need no others. */
const POLICIES = ['read_packages', 'read_releases', 'read_deployments', 'read_jobs', 'read_environments']

/**
 * A benchmark job token. The origin (bench/e2e/origin.mjs) answers `b` tokens with a job in group
 * 500 (on every benchmark allowlist) and `d` tokens with a job in group 600 (on none).
 */
export const token = (kind: 'b' | 'd', i: number): string => `glcbt-64_${kind}${String(i).padStart(19, '0')}`

function jobRequests (project: number): Array<{ method: string, path: string }> {
  return [
    { method: 'GET', path: `/api/v4/projects/${project}/packages/generic/tool/1.2.3/tool-linux-amd64.tar.gz` },
    { method: 'GET', path: `/api/v4/projects/${project}/releases/permalink/latest` },
    { method: 'GET', path: `/api/v4/projects/${project}/deployments?per_page=20&order_by=created_at` },
    { method: 'GET', path: `/api/v4/projects/${project}/jobs/artifacts/main/raw/dist/app.js?job=build` },
    { method: 'GET', path: `/api/v4/projects/bench%2Ftarget-${project}/releases` },
    { method: 'GET', path: '/api/v4/job' },
    { method: 'GET', path: `/api/v4/projects/${project}/environments` }
  ]
}

const BASE_HEADERS = { 'user-agent': 'gitlab-runner 18.5.0 (bench)', accept: 'application/json' }

/**
 * `count` requests: `tokens` job tokens round-robin over `projects` target projects (ids
 * 1..projects), 7 routes each; `kind` null sends them without a token.
 */
export function workload (kind: 'b' | 'd' | null, tokens: number, projects: number, count: number): Req[] {
  const out: Req[] = []
  for (let k = 0; out.length < count; k++) {
    const project = (k % projects) + 1
    const t = k % tokens
    for (const r of jobRequests(project)) {
      // GET /job is the token's own job: no other answer than 200 with a token, 401 without.
      if (kind !== 'b' && r.path === '/api/v4/job') continue
      out.push({ ...r, headers: kind === null ? BASE_HEADERS : { ...BASE_HEADERS, 'job-token': token(kind, t) } })
    }
  }
  return out.slice(0, count)
}

/** Project `project`'s allowlist: group 500 with the load's policies. */
export function grantsOf (project: number): ProjectGrants {
  return {
    projectId: project,
    projectPath: `bench/target-${project}`,
    inboundEnabled: true,
    entries: [{ targetType: 'group', targetId: 500, targetPath: 'g500', defaultPermissions: false, jobTokenPolicies: POLICIES, addedBy: null, createdAt: '2026-01-01T00:00:00.000Z' }]
  }
}

let stateFiles = 0

/**
 * A memory store's state file (GATE_STATE_FILE) in `dir` holding projects 1..projects: a new file
 * for each gate, since a gate refuses to decide from a file another process wrote after it read
 * it, as writing one name again for the next gate would be.
 */
export function stateFile (dir: string, projects: number): string {
  const file = join(dir, `grants-${projects}-${++stateFiles}.json`)
  const list = Array.from({ length: projects }, (_, i) => ({ version: 1, grants: grantsOf(i + 1) }))
  writeFileSync(file, JSON.stringify({ format: 'job-token-gate/grants', formatVersion: 1, projects: list }))
  return file
}

/** A private Redis whose store holds projects 1..projects, as the Redis gates read it. */
export async function redisHolding (projects: number): Promise<RedisServer> {
  const redis = await startRedis()
  const store = await createRedisStore({ url: redis.url })
  for (let p = 1; p <= projects; p++) await store.put(grantsOf(p))
  await store.close()
  return redis
}

/** The service token the benchmark gates send the origin (which answers any). */
export const BENCH_SERVICE_TOKEN = 'bench-service-token'

/**
 * The settings every benchmark gate starts with (bench:e2e, bench:instructions): the origin as
 * upstream and GitLab, its API and health listeners on loopback, no instance token prefix to
 * read from GitLab. The rest (store, TTLs, forward-auth) is each run's own.
 */
export function benchGateEnv (origin: string): Record<string, string> {
  return {
    GATE_UPSTREAM_URL: origin,
    GATE_LISTEN: '127.0.0.1:0',
    GATE_HEALTH_LISTEN: '127.0.0.1:0',
    GATE_SERVICE_TOKEN: BENCH_SERVICE_TOKEN,
    GATE_INSTANCE_TOKEN_PREFIX: ''
  }
}
