// Properties of decide() over thousands of random cases from a seeded PRNG (same cases on every
// run; a failure prints the seed and case index to replay it):
// - it agrees with a plain reference written from docs/gitlab-rules.md ("The decision") without decide.ts;
// - granting more policies to any entry never turns an allow into a deny;
// - turning a fine-grained entry into a default-permissions one never does either;
// - deny details are consistent (missing ⊆ required, messages present).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import { decide, type Decision, type DecisionSubject } from '../../src/policy/decide.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { createInstanceSettings, type AllowlistEntry, type InstanceSettings, type ProjectGrants } from '../../src/grants/model.ts'
import { prng } from '../helpers/prng.ts'

const SEED = 0x5eed_2025
const CASES = 5000

const catalog = loadCatalog()
const policies = createPolicyIndex(catalog.policies)
const NAMES = [...catalog.policies.policies.map(p => p.name), ...catalog.policies.deprecated]
const ROUTES: CatalogRoute[] = [...catalog.routes, { ...catalog.routes[0]!, id: 'synthetic_no_policies', policies: [], skipPolicies: false }]


interface Case {
  route: CatalogRoute
  identity: DecisionSubject
  accessed: number
  grants: ProjectGrants | null
  settings: InstanceSettings
}

function generate (random: () => number): Case {
  const int = (n: number): number => Math.floor(random() * n)
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!
  const some = <T>(items: readonly T[], p: number): T[] => items.filter(() => random() < p)
  // Small id spaces so that entries, ancestors and the job project collide often.
  const groups = [1, 2, 3, 4, 5, 6]
  const ancestors = some(groups, 0.5).sort(() => random() - 0.5)
  const identity: DecisionSubject = { jobProjectId: 1 + int(6), ancestorGroupIds: ancestors }
  const accessed = 1 + int(6)
  const entries: AllowlistEntry[] = []
  const seen = new Set<string>()
  for (let i = int(6); i > 0; i--) {
    const targetType = random() < 0.5 ? 'project' : 'group'
    const targetId = 1 + int(6)
    if (seen.has(`${targetType}${targetId}`) || (targetType === 'project' && targetId === accessed)) continue
    seen.add(`${targetType}${targetId}`)
    const defaultPermissions = random() < 0.3
    entries.push({ targetType, targetId, defaultPermissions, jobTokenPolicies: some(NAMES, 0.2), addedBy: null, createdAt: '2025-01-01T00:00:00Z' })
  }
  return {
    route: random() < 0.05 ? ROUTES[ROUTES.length - 1]! : pick(ROUTES),
    identity,
    accessed,
    grants: random() < 0.1 ? null : { projectId: accessed, projectPath: 'acme/target', inboundEnabled: random() < 0.7, entries },
    settings: createInstanceSettings({ enforceInboundScope: random() < 0.7, unknownProject: random() < 0.8 ? 'empty_allowlist' : 'allow' })
  }
}

/** The rules read straight from the spec: sort candidates by rank, expand admin policies into a set. */
function reference (c: Case): { allow: boolean, missing: string[] } {
  if (c.route.jobTokenScope === 'project') return { allow: c.identity.jobProjectId === c.accessed, missing: [] }
  if (c.identity.jobProjectId === c.accessed) return { allow: true, missing: [] }
  if (c.grants === null) return { allow: c.settings.unknownProject === 'allow', missing: [] }
  if (!c.grants.inboundEnabled && !c.settings.enforceInboundScope) return { allow: true, missing: [] }
  const rank = (e: AllowlistEntry): number => e.targetType === 'project'
    ? (e.targetId === c.identity.jobProjectId ? -1 : Infinity)
    : (c.identity.ancestorGroupIds.includes(e.targetId) ? c.identity.ancestorGroupIds.indexOf(e.targetId) : Infinity)
  const candidates = c.grants.entries.filter(e => rank(e) !== Infinity).sort((a, b) => rank(a) - rank(b))
  const entry = candidates[0]
  if (entry === undefined) return { allow: false, missing: [] }
  if (entry.defaultPermissions || c.route.skipPolicies) return { allow: true, missing: [] }
  if (c.route.policies.length === 0) return { allow: false, missing: [] }
  const held = new Set(entry.jobTokenPolicies)
  for (const p of catalog.policies.policies) if (p.implies !== undefined && held.has(p.name)) held.add(p.implies)
  const missing = c.route.policies.filter(p => !held.has(p))
  return { allow: missing.length === 0, missing }
}

function run (c: Case): Decision {
  return decide(c.route, c.identity, c.accessed, c.grants, c.settings, policies)
}

function withGrants (c: Case, change: (entries: AllowlistEntry[]) => AllowlistEntry[]): Case {
  return c.grants === null ? c : { ...c, grants: { ...c.grants, entries: change([...c.grants.entries]) } }
}

test(`property: decide agrees with the reference on ${CASES} random cases`, () => {
  const random = prng(SEED)
  const reasons = new Map<string, number>()
  for (let i = 0; i < CASES; i++) {
    const c = generate(random)
    const got = run(c)
    const want = reference(c)
    reasons.set(got.reason, (reasons.get(got.reason) ?? 0) + 1)
    assert.equal(got.allow, want.allow, `case ${i} (seed ${SEED}): ${JSON.stringify(c)}`)
    if (!got.allow) {
      assert.deepEqual(got.missingPolicies, want.missing, `case ${i}`)
      assert.equal(got.reason === 'MISSING_POLICIES', got.missingPolicies.length > 0, `case ${i}`)
      assert.ok(got.missingPolicies.every(p => c.route.policies.includes(p)), `case ${i}`)
      assert.ok(got.message.length > 0)
    }
  }
  // The generator must reach every outcome, or the agreement above proves little.
  for (const reason of ['SELF_ACCESS', 'INBOUND_DISABLED', 'UNKNOWN_PROJECT', 'UNKNOWN_PROJECT_ALLOWED', 'DEFAULT_PERMISSIONS', 'SKIP_POLICIES', 'POLICIES_GRANTED', 'NOT_ALLOWLISTED', 'NO_POLICIES_FOR_ENDPOINT', 'MISSING_POLICIES']) {
    assert.ok((reasons.get(reason) ?? 0) >= 5, `reason ${reason} reached ${reasons.get(reason) ?? 0} times`)
  }
})

test(`property: granting more policies never turns an allow into a deny (${CASES} cases)`, () => {
  const random = prng(SEED + 1)
  let checked = 0
  let grew = 0
  for (let i = 0; i < CASES; i++) {
    const c = generate(random)
    if (c.grants === null || c.grants.entries.length === 0) continue
    const before = run(c)
    // Add random policies to every entry (each keeps what it had).
    const more = withGrants(c, entries => entries.map(e => ({ ...e, jobTokenPolicies: [...new Set([...e.jobTokenPolicies, ...NAMES.filter(() => random() < 0.3)])] })))
    const after = run(more)
    checked++
    if (before.allow) assert.equal(after.allow, true, `case ${i} (seed ${SEED + 1}): ${JSON.stringify(c)} → ${JSON.stringify(more.grants)}`)
    if (!before.allow && after.allow) grew++
    // And removing policies never turns a deny into an allow (the same law read backwards).
    const fewer = withGrants(c, entries => entries.map(e => ({ ...e, jobTokenPolicies: e.jobTokenPolicies.filter(() => random() < 0.5) })))
    if (!before.allow) assert.equal(run(fewer).allow, false, `case ${i}: removing policies allowed`)
  }
  assert.ok(checked > CASES / 2, `only ${checked} cases had entries`)
  assert.ok(grew > 0, 'some denials must turn into allows, or the policies added were never relevant')
})

test(`property: switching an entry to default permissions never turns an allow into a deny (${CASES} cases)`, () => {
  const random = prng(SEED + 2)
  for (let i = 0; i < CASES; i++) {
    const c = generate(random)
    if (c.grants === null || c.grants.entries.length === 0) continue
    const target = Math.floor(random() * c.grants.entries.length)
    const widened = withGrants(c, entries => entries.map((e, j) => j === target ? { ...e, defaultPermissions: true } : e))
    if (run(c).allow) assert.equal(run(widened).allow, true, `case ${i}: ${JSON.stringify(c)}`)
  }
})

test('property: decide is deterministic and does not mutate its inputs', () => {
  const random = prng(SEED + 3)
  for (let i = 0; i < 500; i++) {
    const c = generate(random)
    const snapshot = JSON.stringify(c)
    assert.deepEqual(run(c), run(c))
    assert.equal(JSON.stringify(c), snapshot)
  }
})
