// Older GitLab switches fine-grained policies off: the feature flag add_policies_to_ci_job_token,
// then the root namespace setting job_token_policies_enabled (17.11 to 18.4). A fine-grained
// entry then acts as default permissions. decide() reads the instance setting
// (GATE_FINE_GRAINED_POLICIES) and the accessed project's override (jobTokenPoliciesEnabled).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import { decide, policiesEnforced, type DecisionSubject } from '../../src/policy/decide.ts'
import { createInstanceSettings, validateProjectGrants, type AllowlistEntry, type InstanceSettings, type ProjectGrants } from '../../src/grants/model.ts'
import { ACCESSED, CREATE_DEPLOYMENT, JOB, NO_POLICIES, policies, READ_PACKAGES } from './world.ts'

const ENFORCE = createInstanceSettings()
const OFF = createInstanceSettings({ fineGrainedPolicies: 'off' })

const fineGrained = (targetId: number, p: readonly string[]): AllowlistEntry =>
  ({ targetType: 'project', targetId, defaultPermissions: false, jobTokenPolicies: p, addedBy: null, createdAt: '2025-01-01T00:00:00Z' })
const grants = (entries: AllowlistEntry[], override?: boolean): ProjectGrants =>
  ({ projectId: ACCESSED, projectPath: 'acme/target', inboundEnabled: true, entries, ...(override === undefined ? {} : { jobTokenPoliciesEnabled: override }) })

interface Case {
  readonly name: string
  readonly route: CatalogRoute
  readonly settings: InstanceSettings
  readonly grants: ProjectGrants | null
  readonly identity?: DecisionSubject
  readonly reason: string
}

const READ_ONLY = [fineGrained(100, ['read_packages'])]
const cases: Case[] = [
  { name: 'enforced: a missing policy denies', route: CREATE_DEPLOYMENT, settings: ENFORCE, grants: grants(READ_ONLY), reason: 'MISSING_POLICIES' },
  { name: 'enforced: a held policy allows', route: READ_PACKAGES, settings: ENFORCE, grants: grants(READ_ONLY), reason: 'POLICIES_GRANTED' },
  { name: 'off: a fine-grained entry acts as default permissions', route: CREATE_DEPLOYMENT, settings: OFF, grants: grants(READ_ONLY), reason: 'FINE_GRAINED_POLICIES_OFF' },
  { name: 'off: even a held policy is not checked', route: READ_PACKAGES, settings: OFF, grants: grants(READ_ONLY), reason: 'FINE_GRAINED_POLICIES_OFF' },
  { name: 'off: an entry with no policies at all allows too', route: CREATE_DEPLOYMENT, settings: OFF, grants: grants([fineGrained(100, [])]), reason: 'FINE_GRAINED_POLICIES_OFF' },
  { name: 'off: a route without policies is allowed (GitLab skips the policy check whole)', route: NO_POLICIES, settings: OFF, grants: grants(READ_ONLY), reason: 'FINE_GRAINED_POLICIES_OFF' },
  { name: 'off: the allowlist still applies', route: READ_PACKAGES, settings: OFF, grants: grants([fineGrained(999, ['read_packages'])]), reason: 'NOT_ALLOWLISTED' },
  { name: 'off: a default-permissions entry keeps its own reason', route: CREATE_DEPLOYMENT, settings: OFF, grants: grants([{ ...fineGrained(100, []), defaultPermissions: true }]), reason: 'DEFAULT_PERMISSIONS' },
  { name: 'off: self access is still self access', route: CREATE_DEPLOYMENT, settings: OFF, grants: grants(READ_ONLY), identity: { ...JOB, jobProjectId: ACCESSED }, reason: 'SELF_ACCESS' },
  { name: 'off: an unknown project is still refused', route: READ_PACKAGES, settings: OFF, grants: null, reason: 'UNKNOWN_PROJECT' },
  { name: 'instance enforces, the project\'s namespace has it off', route: CREATE_DEPLOYMENT, settings: ENFORCE, grants: grants(READ_ONLY, false), reason: 'FINE_GRAINED_POLICIES_OFF' },
  { name: 'instance off, the project\'s namespace has it on', route: CREATE_DEPLOYMENT, settings: OFF, grants: grants(READ_ONLY, true), reason: 'MISSING_POLICIES' },
  { name: 'instance off, the project\'s namespace on, the policy held', route: READ_PACKAGES, settings: OFF, grants: grants(READ_ONLY, true), reason: 'POLICIES_GRANTED' },
  { name: 'both enforce', route: CREATE_DEPLOYMENT, settings: ENFORCE, grants: grants(READ_ONLY, true), reason: 'MISSING_POLICIES' }
]

test('decide with fine-grained policies off: fine-grained entries act as default permissions', () => {
  for (const c of cases) {
    const decision = decide(c.route, c.identity ?? JOB, ACCESSED, c.grants, c.settings, policies)
    assert.equal(decision.reason, c.reason, c.name)
    assert.equal(decision.allow, !['MISSING_POLICIES', 'NOT_ALLOWLISTED', 'UNKNOWN_PROJECT', 'NO_POLICIES_FOR_ENDPOINT'].includes(c.reason), c.name)
  }
})

test('policiesEnforced: the project override wins, absent settings enforce', () => {
  const table: Array<[InstanceSettings, boolean | undefined, boolean]> = [
    [ENFORCE, undefined, true], [OFF, undefined, false], [ENFORCE, false, false], [OFF, true, true], [OFF, false, false], [ENFORCE, true, true]
  ]
  for (const [settings, override, expected] of table) assert.equal(policiesEnforced(grants([], override), settings), expected, `${settings.fineGrainedPolicies ?? 'unset'} / ${String(override)}`)
  assert.equal(policiesEnforced(null, OFF), false)
  const { fineGrainedPolicies: _omitted, ...legacy } = ENFORCE
  assert.equal(policiesEnforced(null, legacy), true, 'settings built before the field existed enforce')
})

test('the settings and the stored field are validated', () => {
  assert.throws(() => createInstanceSettings({ fineGrainedPolicies: 'sometimes' as 'off' }), /fineGrainedPolicies must be "enforce" or "off"/)
  const settings = ENFORCE
  const doc = validateProjectGrants({ ...grants([]), jobTokenPoliciesEnabled: false }, { settings })
  assert.equal(doc.jobTokenPoliciesEnabled, false)
  assert.equal('jobTokenPoliciesEnabled' in validateProjectGrants(grants([]), { settings }), false, 'absent stays absent')
  assert.throws(() => validateProjectGrants({ ...grants([]), jobTokenPoliciesEnabled: 'no' }, { settings }), /jobTokenPoliciesEnabled/)
})
