// A "gate replica" as far as grants go: its own Redis store connections, its own cache, and the
// decision. Two of these on one Redis are two gate instances (replicas.test.ts, outage.test.ts,
// bench/invalidation.ts).

import { createRedisStore, type RedisGrantStore, type RedisStoreOptions } from '../../src/grants/redis-store.ts'
import { createGrantCache, type GrantCache, type GrantCacheOptions } from '../../src/grants/cache.ts'
import { DEFAULT_INSTANCE_SETTINGS, type ProjectGrants } from '../../src/grants/model.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { decide, type Decision, type DecisionSubject } from '../../src/policy/decide.ts'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import { loadCatalog } from '../../src/catalog/load.ts'

const catalog = loadCatalog()
export const policies = createPolicyIndex(catalog.policies)
export const readPackagesRoute: CatalogRoute = catalog.routes.find(r => r.id === 'get_projects_id_packages')!

export interface Replica {
  readonly store: RedisGrantStore
  readonly cache: GrantCache
  /** The decision this replica takes for `identity` on `projectId`, through its cache. */
  decide (identity: DecisionSubject, projectId: number, route?: CatalogRoute): Promise<Decision>
  close (): Promise<void>
}

export async function createReplica (store: RedisStoreOptions, cache: Partial<GrantCacheOptions> = {}): Promise<Replica> {
  const redisStore = await createRedisStore(store)
  const grantCache = createGrantCache({ store: redisStore, ...cache })
  return {
    store: redisStore,
    cache: grantCache,
    async decide (identity, projectId, route = readPackagesRoute) {
      return decide(route, identity, projectId, await grantCache.get(projectId), DEFAULT_INSTANCE_SETTINGS, policies)
    },
    async close () {
      grantCache.close()
      await redisStore.close()
    }
  }
}

/** Project `projectId` allowing jobs of `jobProjectIds` with default permissions. */
export function allowing (projectId: number, jobProjectIds: readonly number[]): ProjectGrants {
  return {
    projectId,
    projectPath: `acme/target-${projectId}`,
    inboundEnabled: true,
    entries: jobProjectIds.map(id => ({ targetType: 'project', targetId: id, defaultPermissions: true, jobTokenPolicies: [], addedBy: null, createdAt: '2025-01-01T00:00:00Z' }))
  }
}

/** Polls `replica` (yielding to I/O between tries) until its decision matches; returns the elapsed ms. */
export async function untilDecision (replica: Replica, identity: DecisionSubject, projectId: number, allow: boolean, started: number, timeoutMs = 5000): Promise<number> {
  for (;;) {
    const decision = await replica.decide(identity, projectId)
    const elapsed = performance.now() - started
    if (decision.allow === allow) return elapsed
    if (elapsed > timeoutMs) throw new Error(`replica still ${decision.allow ? 'allows' : 'denies'} after ${timeoutMs} ms`)
    await new Promise(resolve => setImmediate(resolve))
  }
}

export function percentile (sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!
}

export interface LagResult { readonly samples: number[], readonly p50: number, readonly p99: number, readonly max: number }

/**
 * N revocations written through `writer`, each timed until `reader` denies. Between two
 * revocations the grant is restored and the reader is waited for (not timed).
 */
export async function measureRevocations (writer: Replica, reader: Replica, n: number, projectId = 900): Promise<LagResult> {
  const job: DecisionSubject = { jobProjectId: 901, ancestorGroupIds: [] }
  const samples: number[] = []
  for (let i = 0; i < n; i++) {
    await writer.store.put(allowing(projectId, [901]))
    await untilDecision(reader, job, projectId, true, performance.now())
    const started = performance.now()
    await writer.store.put(allowing(projectId, [902]))
    samples.push(await untilDecision(reader, job, projectId, false, started))
  }
  const sorted = [...samples].sort((a, b) => a - b)
  return { samples, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1]! }
}
