// Generated cases (fast-check) for decide(), with what the existing property test leaves out: the
// accessed project's facts (visibility, feature levels), the fine-grained switches (instance,
// root namespace, project) and the container registry's job_token_scope. The oracle is GitLab's
// order as read from its source (lib/api/helpers.rb find_project! then job_token_policies_authorized?,
// app/models/ci/job_token/scope.rb policies_allowed?, app/policies/project_policy.rb for jobs
// outside the allowlist), written without decide.ts. The property: the gate never allows what
// the oracle refuses. Where GitLab's endpoint checks its own ability after the policy check (a
// read ProjectPolicy does not open by feature), the oracle says "GitLab decides" and only the
// earlier checks count.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { decide, type DecisionSubject } from '../../src/policy/decide.ts'
import { createInstanceSettings, type AllowlistEntry, type InstanceSettings, type ProjectGrants } from '../../src/grants/model.ts'
import type { FeatureAccessLevel, ProjectFacts } from '../../src/projects/facts.ts'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import { catalog, policies } from '../policy/world.ts'

const ROUTES: readonly CatalogRoute[] = catalog.routes
const NAMES = catalog.policies.policies.map(p => p.name)
const READ_OF = new Map(catalog.policies.policies.filter(p => p.implies !== undefined).map(p => [p.name, p.implies!]))
const LEVELS: readonly FeatureAccessLevel[] = ['disabled', 'private', 'enabled', 'public']
const FEATURES = ['package_registry', 'container_registry', 'builds', 'releases', 'environments', 'repository', 'issues', 'merge_requests']
const opens = (level: FeatureAccessLevel | undefined): boolean => level === 'enabled' || level === 'public'

interface Case {
  route: CatalogRoute
  job: DecisionSubject
  accessed: number
  grants: ProjectGrants | null
  settings: InstanceSettings
  facts: ProjectFacts
  namespace: boolean | null
}

/** GitLab: true allow, false refuse. */
function gitlab (c: Case): boolean {
  const { route, job, accessed, grants, settings, facts } = c
  if (route.jobTokenScope === 'project' && job.jobProjectId !== accessed) return false // authorized_project_scope?
  if (job.jobProjectId === accessed) return true // self_referential?
  const inbound = grants === null ? true : grants.inboundEnabled || settings.enforceInboundScope
  if (!inbound) return true
  const entries = grants?.entries ?? []
  const entry = entries.find(e => e.targetType === 'project' && e.targetId === job.jobProjectId) ??
    [...job.ancestorGroupIds].map(g => entries.find(e => e.targetType === 'group' && e.targetId === g)).find(e => e !== undefined) ?? null
  const policiesOn = grants?.jobTokenPoliciesEnabled ?? c.namespace ?? settings.fineGrainedPolicies !== 'off'
  const features = route.publicAccessFeatures ?? []
  const publicFeature = facts.visibility !== 'private' && features.length > 0 && features.every(f => opens(facts.features[f]))
  const policyCheck = (): boolean => {
    if (route.skipPolicies || publicFeature || !policiesOn) return true
    if (entry === null || entry.defaultPermissions) return entry !== null
    if (route.policies.length === 0) return false
    const held = new Set(entry.jobTokenPolicies.flatMap(p => READ_OF.has(p) ? [p, READ_OF.get(p)!] : [p]))
    return route.policies.every(p => held.has(p))
  }
  if (entry !== null) return policyCheck() // in scope: the job user's role decides the rest, upstream
  // Outside the allowlist: read_project only on a public or internal project through its package registry.
  if (facts.visibility === 'private' || !opens(facts.features.package_registry)) return false
  if (!policyCheck()) return false
  // Every role is taken away; only reads come back, per feature. A write is refused.
  const read = route.method === 'GET' || (route.policies.length > 0 && route.policies.every(p => p.startsWith('read_')))
  return read // which read GitLab's endpoint asks for is its own check, after the gate
}

const arbitraryCase: fc.Arbitrary<Case> = fc.record({
  route: fc.constantFrom(...ROUTES),
  jobProjectId: fc.integer({ min: 1, max: 4 }),
  ancestors: fc.uniqueArray(fc.integer({ min: 1, max: 5 }), { maxLength: 4 }),
  accessed: fc.integer({ min: 1, max: 4 }),
  known: fc.boolean(),
  inboundEnabled: fc.boolean(),
  projectPolicies: fc.constantFrom<boolean | undefined>(undefined, true, false),
  entries: fc.uniqueArray(fc.record({
    targetType: fc.constantFrom<'project' | 'group'>('project', 'group'),
    targetId: fc.integer({ min: 1, max: 5 }),
    defaultPermissions: fc.boolean(),
    jobTokenPolicies: fc.uniqueArray(fc.constantFrom(...NAMES), { maxLength: 4 })
  }), { maxLength: 5, selector: e => `${e.targetType}${e.targetId}` }),
  enforce: fc.boolean(),
  fineGrained: fc.constantFrom<'enforce' | 'off'>('enforce', 'off'),
  namespace: fc.constantFrom<boolean | null>(null, true, false),
  visibility: fc.constantFrom<'private' | 'internal' | 'public'>('private', 'internal', 'public'),
  levels: fc.array(fc.constantFrom(...LEVELS), { minLength: FEATURES.length, maxLength: FEATURES.length })
}).map(r => {
  const entries: AllowlistEntry[] = r.entries
    .filter(e => !(e.targetType === 'project' && e.targetId === r.accessed))
    .map(e => ({ ...e, addedBy: null, createdAt: '2026-01-01T00:00:00Z' }))
  return {
    route: r.route,
    job: { jobProjectId: r.jobProjectId, jobProjectPath: `g/p${r.jobProjectId}`, ancestorGroupIds: r.ancestors },
    accessed: r.accessed,
    grants: r.known ? { projectId: r.accessed, projectPath: `g/p${r.accessed}`, inboundEnabled: r.inboundEnabled, entries, ...(r.projectPolicies === undefined ? {} : { jobTokenPoliciesEnabled: r.projectPolicies }) } : null,
    settings: createInstanceSettings({ enforceInboundScope: r.enforce, fineGrainedPolicies: r.fineGrained }),
    facts: { id: r.accessed, path: `p${r.accessed}`, fullPath: `g/p${r.accessed}`, visibility: r.visibility, features: Object.fromEntries(FEATURES.map((f, i) => [f, r.levels[i]!])) },
    namespace: r.namespace
  }
})

test('decide() never allows what GitLab refuses (facts, fine-grained switches, scope)', () => {
  fc.assert(fc.property(arbitraryCase, c => {
    // As the decide stage runs it: first without facts, then with them where a deny asks.
    let d = decide(c.route, c.job, c.accessed, c.grants, c.settings, policies, undefined, c.namespace)
    if (!d.allow && d.needsFacts === true) d = decide(c.route, c.job, c.accessed, c.grants, c.settings, policies, c.facts, c.namespace)
    if (d.allow) assert.equal(gitlab(c), true, `gate ${d.reason}, GitLab refuses: ${JSON.stringify({ ...c, route: c.route.id })}`)
  }), { numRuns: 4000, seed: 20261129 })
})
