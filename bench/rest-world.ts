// The REST world bench:resolve and bench:graphql decide in: the shipped catalog, a project
// (700, acme/registry) whose allowlist holds group 20 with admin_packages and whose Conan
// packages job tokens may write, and a job of project 300 in that group whose token is already
// resolved (a constant identity outcome: the cost of resolving it is not what these time).

import { Readable } from 'node:stream'
import { loadCatalog } from '../src/catalog/load.ts'
import { createPolicyIndex } from '../src/catalog/policy-index.ts'
import type { Engine } from '../src/gate/pipeline.ts'
import { createGrantCache } from '../src/grants/cache.ts'
import { createMemoryStore } from '../src/grants/memory-store.ts'
import { createInstanceSettings, validateProjectGrants } from '../src/grants/model.ts'
import type { IdentityOutcome, IdentityStage } from '../src/identity/stage.ts'
import type { JobIdentity } from '../src/identity/types.ts'
import { createCanonicalizer } from '../src/routing/canonical.ts'
import { Router } from '../src/routing/router.ts'

/** An enforcing gate's engine over that world; `extra` adds what a bench needs (a project finder). */
export async function restEngine (extra: Partial<Engine> = {}): Promise<{ engine: Engine, close: () => Promise<void> }> {
  const catalog = loadCatalog()
  const settings = createInstanceSettings()
  const policies = createPolicyIndex(catalog.policies)
  const store = await createMemoryStore()
  await store.put(validateProjectGrants({
    projectId: 700, projectPath: 'acme/registry', inboundEnabled: true,
    entries: [{ targetType: 'group', targetId: 20, defaultPermissions: false, jobTokenPolicies: ['admin_packages'], addedBy: { id: 1 }, createdAt: '2026-01-01T00:00:00Z' }],
    packageRules: { conan: { read: true, write: 'job_token_and_maintainer' } }
  }, { settings, policies }))
  const identity: JobIdentity = { jobId: 3, jobProjectId: 300, jobProjectPath: 'other/tools', ancestorGroupIds: [20], userId: 8, pipelineId: 1003 }
  const outcome = { kind: 'job', identity, token: 't', source: 'header', basicAuth: false, body: { kind: 'stream', stream: Readable.from([]), guarded: false }, credentials: [] } as unknown as IdentityOutcome
  const identityStage: IdentityStage = { run: async () => outcome }
  const grants = createGrantCache({ store, ttlMs: 3_600_000, staleWindowMs: 0 })
  const engine = {
    router: Router.compile(catalog.routes),
    canonicalize: createCanonicalizer(),
    policies,
    settings,
    grants,
    identity: identityStage,
    catalogVersion: catalog.version,
    options: { mode: 'enforce', shadowResources: [], nonApiJobTokens: 'forward', unresolvedProject: 'resolve' },
    ...extra
  } as Engine
  return { engine, close: async () => { grants.close(); await store.close() } }
}
