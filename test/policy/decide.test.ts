// Every rule of docs/gitlab-rules.md, "The decision", and their combinations, as a table.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import { decide, missingPoliciesMessage, nearestEntry, notAllowlistedMessage, toSentence, type Decision, type DecisionSubject, type ReasonCode } from '../../src/policy/decide.ts'
import { createInstanceSettings, type AllowlistEntry, type InstanceSettings, type ProjectGrants } from '../../src/grants/model.ts'
import { errors } from '../../src/errors.ts'
import { ACCESSED, catalog, catalogRoute as route, CREATE_DEPLOYMENT, JOB, NO_POLICIES, policies, READ_PACKAGES } from './world.ts'

const PUBLISH_PACKAGE = route('post_projects_id_packages_composer')
const SKIP = route('get_projects_id_packages_conan_v1_ping')

const ON = createInstanceSettings()
const OFF = createInstanceSettings({ enforceInboundScope: false })
const UNKNOWN_ALLOW = createInstanceSettings({ unknownProject: 'allow' })

function project (targetId: number, policiesOrDefault: readonly string[] | 'default'): AllowlistEntry {
  return entry('project', targetId, policiesOrDefault)
}
function group (targetId: number, policiesOrDefault: readonly string[] | 'default'): AllowlistEntry {
  return entry('group', targetId, policiesOrDefault)
}
function entry (targetType: 'project' | 'group', targetId: number, p: readonly string[] | 'default'): AllowlistEntry {
  return { targetType, targetId, defaultPermissions: p === 'default', jobTokenPolicies: p === 'default' ? [] : p, addedBy: null, createdAt: '2025-01-01T00:00:00Z' }
}
function grants (entries: AllowlistEntry[], inboundEnabled = true): ProjectGrants {
  return { projectId: ACCESSED, projectPath: 'acme/target', inboundEnabled, entries }
}

interface Case {
  name: string
  route?: CatalogRoute
  identity?: DecisionSubject
  accessed?: number
  grants: ProjectGrants | null
  settings?: InstanceSettings
  reason: ReasonCode
  missing?: string[]
  message?: string
}

// GitLab names both projects by their short path (the last segment of the full path).
const NOT_ALLOWED = '403 Forbidden - Authentication by CI/CD job token not allowed from job to target.'

const cases: Case[] = [
  // 1. Self access
  { name: 'self access needs no entry', identity: { ...JOB, jobProjectId: ACCESSED }, grants: grants([]), reason: 'SELF_ACCESS' },
  { name: 'self access on an unknown project', identity: { ...JOB, jobProjectId: ACCESSED }, grants: null, reason: 'SELF_ACCESS' },
  { name: 'self access skips the policy check of a fine-grained setup', identity: { ...JOB, jobProjectId: ACCESSED }, route: CREATE_DEPLOYMENT, grants: grants([project(100, [])]), reason: 'SELF_ACCESS' },
  { name: 'self access on an endpoint without policies', identity: { ...JOB, jobProjectId: ACCESSED }, route: NO_POLICIES, grants: grants([]), reason: 'SELF_ACCESS' },

  // Unknown accessed project
  { name: 'unknown project: as an empty allowlist with enforcement on', grants: null, reason: 'UNKNOWN_PROJECT', message: '403 Forbidden - Authentication by CI/CD job token not allowed from job to project #500.' },
  { name: 'unknown project: even when the instance does not enforce', grants: null, settings: OFF, reason: 'UNKNOWN_PROJECT' },
  { name: 'unknown project with unknownProject=allow', grants: null, settings: UNKNOWN_ALLOW, reason: 'UNKNOWN_PROJECT_ALLOWED' },

  // 2. Inbound allowlist switch: off only when project AND instance say off
  { name: 'inbound off (project off, instance off)', grants: grants([], false), settings: OFF, reason: 'INBOUND_DISABLED' },
  { name: 'inbound off skips policies too', route: CREATE_DEPLOYMENT, grants: grants([project(100, [])], false), settings: OFF, reason: 'INBOUND_DISABLED' },
  { name: 'instance enforcement overrides a project that is off', grants: grants([], false), settings: ON, reason: 'NOT_ALLOWLISTED' },
  { name: 'project on while the instance is off', grants: grants([], true), settings: OFF, reason: 'NOT_ALLOWLISTED' },
  { name: 'project on, instance off, entry present', grants: grants([project(100, 'default')], true), settings: OFF, reason: 'DEFAULT_PERMISSIONS' },

  // 3. Nearest entry
  { name: 'no entry', grants: grants([]), reason: 'NOT_ALLOWLISTED', message: NOT_ALLOWED },
  { name: 'no entry, job project path unknown', identity: { jobProjectId: 100, ancestorGroupIds: [] }, grants: grants([]), reason: 'NOT_ALLOWLISTED', message: '403 Forbidden - Authentication by CI/CD job token not allowed from project #100 to target.' },
  { name: 'an entry for another project does not count', grants: grants([project(101, 'default')]), reason: 'NOT_ALLOWLISTED' },
  { name: 'a group entry for a group the job is not in', grants: grants([group(99, 'default')]), reason: 'NOT_ALLOWLISTED' },
  { name: 'a group entry whose id equals the job project id is not a project entry', grants: grants([group(100, 'default')]), reason: 'NOT_ALLOWLISTED' },
  { name: 'a project entry whose id equals an ancestor group id is not a group entry', grants: grants([project(20, 'default')]), reason: 'NOT_ALLOWLISTED' },
  { name: 'project entry', grants: grants([project(100, 'default')]), reason: 'DEFAULT_PERMISSIONS' },
  { name: 'root group entry', grants: grants([group(1, 'default')]), reason: 'DEFAULT_PERMISSIONS' },
  { name: 'subgroup entry', grants: grants([group(20, 'default')]), reason: 'DEFAULT_PERMISSIONS' },
  { name: 'project entry wins over a group entry (not merged)', grants: grants([group(20, 'default'), project(100, [])]), reason: 'MISSING_POLICIES', missing: ['read_packages'] },
  { name: 'project entry wins over group entries in any order', grants: grants([project(100, ['read_packages']), group(1, [])]), reason: 'POLICIES_GRANTED' },
  { name: 'nearest group wins: subgroup fine-grained over root default', grants: grants([group(1, 'default'), group(20, ['read_packages'])]), route: CREATE_DEPLOYMENT, reason: 'MISSING_POLICIES', missing: ['admin_deployments', 'admin_environments'] },
  { name: 'nearest group wins: parent over root', grants: grants([group(1, 'default'), group(10, ['read_jobs'])]), reason: 'MISSING_POLICIES', missing: ['read_packages'] },
  { name: 'nearest group wins: subgroup default over parent fine-grained', grants: grants([group(10, []), group(20, 'default')]), reason: 'DEFAULT_PERMISSIONS' },
  { name: 'policies of a farther group are not added to the nearest one', grants: grants([group(20, ['admin_deployments']), group(10, ['admin_environments'])]), route: CREATE_DEPLOYMENT, reason: 'MISSING_POLICIES', missing: ['admin_environments'] },
  { name: 'policies of a group entry are not added to the project entry', grants: grants([project(100, ['admin_deployments']), group(20, ['admin_environments'])]), route: CREATE_DEPLOYMENT, reason: 'MISSING_POLICIES', missing: ['admin_environments'] },

  // 4. Default permissions
  { name: 'default permissions on an endpoint with policies', route: CREATE_DEPLOYMENT, grants: grants([project(100, 'default')]), reason: 'DEFAULT_PERMISSIONS' },
  { name: 'default permissions on an endpoint without policies', route: NO_POLICIES, grants: grants([project(100, 'default')]), reason: 'DEFAULT_PERMISSIONS' },
  { name: 'default permissions on a skip-policies endpoint', route: SKIP, grants: grants([project(100, 'default')]), reason: 'DEFAULT_PERMISSIONS' },

  // 5. Fine-grained entries
  { name: 'the required policy is held', grants: grants([project(100, ['read_packages'])]), reason: 'POLICIES_GRANTED' },
  { name: 'admin implies read', grants: grants([project(100, ['admin_packages'])]), reason: 'POLICIES_GRANTED' },
  { name: 'read does not imply admin', route: PUBLISH_PACKAGE, grants: grants([project(100, ['read_packages'])]), reason: 'MISSING_POLICIES', missing: ['admin_packages'] },
  { name: 'another resource\'s admin does not imply this read', grants: grants([project(100, ['admin_jobs'])]), reason: 'MISSING_POLICIES', missing: ['read_packages'] },
  { name: 'no policies at all', grants: grants([project(100, [])]), reason: 'MISSING_POLICIES', missing: ['read_packages'], message: '403 Forbidden - Insufficient permissions to access this resource in project target. The following token permission is required: read_packages.' },
  { name: 'all policies required: one of two held', route: CREATE_DEPLOYMENT, grants: grants([project(100, ['admin_deployments'])]), reason: 'MISSING_POLICIES', missing: ['admin_environments'], message: '403 Forbidden - Insufficient permissions to access this resource in project target. The following token permissions are required: admin_deployments and admin_environments.' },
  { name: 'all policies required: both held', route: CREATE_DEPLOYMENT, grants: grants([project(100, ['admin_environments', 'admin_deployments'])]), reason: 'POLICIES_GRANTED' },
  { name: 'all policies required: read twins are not enough', route: CREATE_DEPLOYMENT, grants: grants([project(100, ['read_deployments', 'read_environments'])]), reason: 'MISSING_POLICIES', missing: ['admin_deployments', 'admin_environments'] },
  { name: 'a deprecated policy left in storage grants nothing', grants: grants([project(100, ['read_containers', 'admin_containers'])]), reason: 'MISSING_POLICIES', missing: ['read_packages'] },
  { name: 'an upper-case policy name is not the policy', grants: grants([project(100, ['READ_PACKAGES'])]), reason: 'MISSING_POLICIES', missing: ['read_packages'] },
  { name: 'skip-policies endpoint with no policies held', route: SKIP, grants: grants([project(100, [])]), reason: 'SKIP_POLICIES' },
  { name: 'skip-policies endpoint through a group entry', route: SKIP, grants: grants([group(10, ['read_jobs'])]), reason: 'SKIP_POLICIES' },
  { name: 'endpoint without policies refuses fine-grained entries', route: NO_POLICIES, grants: grants([project(100, ['admin_packages'])]), reason: 'NO_POLICIES_FOR_ENDPOINT', message: '403 Forbidden - This action is unauthorized for CI/CD job tokens.' },
  { name: 'skip-policies still needs an entry', route: SKIP, grants: grants([]), reason: 'NOT_ALLOWLISTED' },
  { name: 'skip-policies endpoint with the allowlist off', route: SKIP, grants: grants([], false), settings: OFF, reason: 'INBOUND_DISABLED' }
]

for (const c of cases) {
  test(`decide: ${c.name}`, () => {
    const decision: Decision = decide(c.route ?? READ_PACKAGES, c.identity ?? JOB, c.accessed ?? ACCESSED, c.grants, c.settings ?? ON, policies)
    assert.equal(decision.reason, c.reason)
    const denied = c.reason in errors
    assert.equal(decision.allow, !denied)
    if (decision.allow) return
    assert.deepEqual(decision.missingPolicies, c.missing ?? [])
    if (c.message !== undefined) assert.equal(decision.message, c.message)
    assert.ok(decision.message.length > 0)
    assert.equal(errors[decision.reason].status, 403, 'every deny reason is a 403 code of src/errors.ts')
  })
}

test('decide: the missing-policies message names every required policy, as GitLab does', () => {
  const decision = decide(CREATE_DEPLOYMENT, JOB, ACCESSED, grants([project(100, ['admin_environments'])]), ON, policies)
  assert.equal(decision.allow, false)
  assert.ok(!decision.allow)
  assert.deepEqual(decision.missingPolicies, ['admin_deployments'])
  assert.match(decision.message, /permissions are required: admin_deployments and admin_environments\.$/)
})

test('decide: sentences join as Rails\' to_sentence does in English: "a and b", "a, b, and c"', () => {
  assert.equal(toSentence([]), '')
  assert.equal(toSentence(['a']), 'a')
  assert.equal(toSentence(['a', 'b']), 'a and b')
  assert.equal(toSentence(['a', 'b', 'c']), 'a, b, and c')
  assert.equal(toSentence(['a', 'b', 'c', 'd']), 'a, b, c, and d')
  assert.equal(missingPoliciesMessage(['a', 'b', 'c'], 'target'), '403 Forbidden - Insufficient permissions to access this resource in project target. The following token permissions are required: a, b, and c.')
})

test('decide: nearestEntry picks by target, never by position', () => {
  const entries = [group(1, 'default'), group(10, []), group(20, ['read_jobs']), project(100, ['read_packages'])]
  for (let i = 0; i < 4; i++) {
    const rotated = [...entries.slice(i), ...entries.slice(0, i)]
    assert.equal(nearestEntry(rotated, JOB)?.targetType, 'project')
    assert.equal(nearestEntry(rotated.filter(e => e.targetType === 'group'), JOB)?.targetId, 20)
    assert.equal(nearestEntry(rotated.filter(e => e.targetId !== 20 && e.targetType === 'group'), JOB)?.targetId, 10)
  }
  assert.equal(nearestEntry(entries, { jobProjectId: 7, ancestorGroupIds: [] }), null)
})

test('decide: adding a nearer, narrower entry can turn an allow into a deny (entries are not merged)', () => {
  const before = decide(READ_PACKAGES, JOB, ACCESSED, grants([group(1, 'default')]), ON, policies)
  const after = decide(READ_PACKAGES, JOB, ACCESSED, grants([group(1, 'default'), group(20, ['read_jobs'])]), ON, policies)
  assert.equal(before.allow, true)
  assert.equal(after.allow, false)
})

test('policy index: admin policies imply their read twin and nothing else', () => {
  assert.deepEqual(policies.expand(['admin_packages', 'read_jobs']), ['admin_packages', 'read_jobs', 'read_packages'])
  assert.equal(policies.satisfies(['admin_releases'], 'read_releases'), true)
  assert.equal(policies.satisfies(['read_releases'], 'admin_releases'), false)
  assert.equal(policies.satisfies(['admin_releases'], 'read_packages'), false)
  assert.equal(policies.isKnown('read_work_items'), true)
  assert.equal(policies.isKnown('read_containers'), false)
  assert.equal(policies.isDeprecated('admin_containers'), true)
})

test('the not-allowlisted message names its two projects, however many pairs came before (its cache starts over past 1,000)', () => {
  const expected = (job: string, accessed: string): string => `403 Forbidden - Authentication by CI/CD job token not allowed from ${job} to ${accessed}.`
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 2500; i++) {
      const [job, accessed] = [`job-${i % 37}`, `target-${i}`]
      assert.equal(notAllowlistedMessage(job, accessed), expected(job, accessed))
    }
  }
  // The same pair seen again, and pairs that would collide if the two names were joined.
  assert.equal(notAllowlistedMessage('a', 'b c'), expected('a', 'b c'))
  assert.equal(notAllowlistedMessage('a b', 'c'), expected('a b', 'c'))
  assert.equal(notAllowlistedMessage('a', 'b c'), expected('a', 'b c'))
})
