// Public and internal accessed projects (docs/gitlab-rules.md, "Public and internal projects"):
// every combination of visibility × the feature's access level × allowlisted or not × a
// fine-grained or default entry, for each kind of route: one that lists project features
// (allow_public_access_for_enabled_project_features), a policy-guarded read without any, a
// skip-policies read and write, and a route listing two features. Routes are built here, not read
// from the catalog, so the table states GitLab's rule and not the catalog's current rows.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import { decide, type Decision, type ReasonCode } from '../../src/policy/decide.ts'
import { createInstanceSettings, type AllowlistEntry, type ProjectGrants } from '../../src/grants/model.ts'
import type { FeatureAccessLevel, ProjectFacts, Visibility } from '../../src/projects/facts.ts'
import { errors } from '../../src/errors.ts'
import { ACCESSED, JOB, policies } from './world.ts'

const ON = createInstanceSettings()

function route (id: string, method: CatalogRoute['method'], resource: string, routePolicies: string[], publicAccessFeatures?: string[]): CatalogRoute {
  return {
    id, method, pattern: `/projects/:id/${id}`, policies: routePolicies, skipPolicies: routePolicies.length === 0, resource, title: id, accessedProject: 'project',
    ...(publicAccessFeatures === undefined ? {} : { publicAccessFeatures })
  } as CatalogRoute
}
// GET /projects/:id/pipelines: read_pipelines, features [:repository, :builds]; the handler's
// read_pipeline is given by no feature, only by role
const PIPELINES = route('pipelines', 'GET', 'pipelines', ['read_pipelines'], ['repository', 'builds'])
// GET /projects/:id/pipelines/:pipeline_id/jobs: read_jobs, features [:repository, :builds]; found through the pipeline
const PIPELINE_JOBS = { ...route('pipeline_jobs', 'GET', 'jobs', ['read_jobs'], ['repository', 'builds']), pattern: '/projects/:id/pipelines/:pipeline_id/jobs' }
// GET /projects/:id/packages/generic/...: read_packages, allow_public_access_for_enabled_project_features: :package_registry
const PACKAGE_READ = route('package_read', 'GET', 'packages', ['read_packages'], ['package_registry'])
// GET /projects/:id/releases: read_releases, no features listed
const RELEASE_READ = route('release_read', 'GET', 'releases', ['read_releases'])
// GET /projects/:id/registry/repositories: skips policies
const REGISTRY_READ = route('registry_read', 'GET', 'container_registry', [])
// DELETE /projects/:id/registry/repositories/:repository_id: skips policies, a write
const REGISTRY_DELETE = route('registry_delete', 'DELETE', 'container_registry', [])
// GET /projects/:id/jobs/artifacts/:ref_name/download: read_jobs, features [:repository, :builds]
const ARTIFACTS = route('artifacts', 'GET', 'jobs', ['read_jobs'], ['repository', 'builds'])
// PUT /projects/:id/packages/generic/...: admin_packages, no features
const PACKAGE_WRITE = route('package_write', 'PUT', 'packages', ['admin_packages'])

type Allowlisted = 'none' | 'fine-grained' | 'default'
const VISIBILITIES: Visibility[] = ['private', 'internal', 'public']
const LEVELS: FeatureAccessLevel[] = ['enabled', 'private', 'disabled']
const ALLOWLISTED: Allowlisted[] = ['none', 'fine-grained', 'default']

function grants (allowlisted: Allowlisted): ProjectGrants {
  const entries: AllowlistEntry[] = allowlisted === 'none'
    ? []
    // A fine-grained entry that holds an unrelated policy: the route's policy is missing.
    : [{ targetType: 'group', targetId: 20, defaultPermissions: allowlisted === 'default', jobTokenPolicies: allowlisted === 'default' ? [] : ['read_secure_files'], addedBy: null, createdAt: '2025-01-01T00:00:00Z' }]
  return { projectId: ACCESSED, projectPath: 'acme/target', inboundEnabled: true, entries }
}
function facts (visibility: Visibility, features: Record<string, FeatureAccessLevel>): ProjectFacts {
  return { id: ACCESSED, path: 'target', fullPath: 'acme/target', visibility, features }
}
// Every other feature enabled, so that only the feature under test varies.
const ALL_ENABLED: Record<string, FeatureAccessLevel> = { package_registry: 'enabled', container_registry: 'enabled', builds: 'enabled', repository: 'enabled', releases: 'enabled', environments: 'enabled' }

const NOT_ALLOWED = '403 Forbidden - Authentication by CI/CD job token not allowed from job to target.'
const needs = (p: string): string => `403 Forbidden - Insufficient permissions to access this resource in project target. The following token permission is required: ${p}.`

interface Row { route: CatalogRoute, feature: string, visibility: Visibility, level: FeatureAccessLevel, allowlisted: Allowlisted, reason: ReasonCode, message?: string }

// Expected outcomes, written out per route: [visibility, level, allowlisted] → reason (and message).
const rows: Row[] = []
function table (r: CatalogRoute, feature: string, expected: Record<string, ReasonCode | [ReasonCode, string]>): void {
  for (const visibility of VISIBILITIES) {
    for (const level of LEVELS) {
      for (const allowlisted of ALLOWLISTED) {
        const key = `${visibility} ${level} ${allowlisted}`
        const want = expected[key] ?? expected[`${visibility} * ${allowlisted}`] ?? expected[`* * ${allowlisted}`]
        assert.ok(want !== undefined, `${r.id}: no expectation for ${key}`)
        const [reason, message] = Array.isArray(want) ? want : [want, undefined]
        rows.push({ route: r, feature, visibility, level, allowlisted, reason, ...(message === undefined ? {} : { message }) })
      }
    }
  }
}

// A route listing package_registry: public/internal with the feature at least enabled skips the
// allowlist and the policies; "private" goes to the allowlist; a private project never.
table(PACKAGE_READ, 'package_registry', {
  '* * default': 'DEFAULT_PERMISSIONS',
  'private * none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'private * fine-grained': ['MISSING_POLICIES', needs('read_packages')],
  'internal enabled none': 'PUBLIC_PROJECT_FEATURES',
  'internal enabled fine-grained': 'PUBLIC_PROJECT_FEATURES',
  'public enabled none': 'PUBLIC_PROJECT_FEATURES',
  'public enabled fine-grained': 'PUBLIC_PROJECT_FEATURES',
  // read_project itself needs the package registry open to job tokens (ProjectPolicy).
  'internal private none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'internal disabled none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'public private none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'public disabled none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'internal private fine-grained': ['MISSING_POLICIES', needs('read_packages')],
  'internal disabled fine-grained': ['MISSING_POLICIES', needs('read_packages')],
  'public private fine-grained': ['MISSING_POLICIES', needs('read_packages')],
  'public disabled fine-grained': ['MISSING_POLICIES', needs('read_packages')]
})

// No features listed: the policy check refuses a job outside the allowlist, whatever
// ProjectPolicy's read_release says; GitLab's message is then the policy one.
table(RELEASE_READ, 'releases', {
  '* * default': 'DEFAULT_PERMISSIONS',
  'private * none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'internal * none': ['MISSING_POLICIES', needs('read_releases')],
  'public * none': ['MISSING_POLICIES', needs('read_releases')],
  '* * fine-grained': ['MISSING_POLICIES', needs('read_releases')]
})

// Skip-policies read: ProjectPolicy's job_token_container_registry decides a job outside the allowlist.
table(REGISTRY_READ, 'container_registry', {
  '* * default': 'DEFAULT_PERMISSIONS',
  '* * fine-grained': 'SKIP_POLICIES',
  'private * none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'internal enabled none': 'PUBLIC_PROJECT_READ',
  'public enabled none': 'PUBLIC_PROJECT_READ',
  'internal private none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'internal disabled none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'public private none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'public disabled none': ['NOT_ALLOWLISTED', NOT_ALLOWED]
})

// Skip-policies write: ProjectPolicy opens no write to a job outside the allowlist.
table(REGISTRY_DELETE, 'container_registry', {
  '* * default': 'DEFAULT_PERMISSIONS',
  '* * fine-grained': 'SKIP_POLICIES',
  '* * none': ['NOT_ALLOWLISTED', NOT_ALLOWED]
})

// A write without features: refused outside the allowlist by the policy check.
table(PACKAGE_WRITE, 'package_registry', {
  '* * default': 'DEFAULT_PERMISSIONS',
  '* * fine-grained': ['MISSING_POLICIES', needs('admin_packages')],
  'private * none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  // The package registry (read_project) decides which message GitLab answers with.
  'internal enabled none': ['MISSING_POLICIES', needs('admin_packages')],
  'public enabled none': ['MISSING_POLICIES', needs('admin_packages')],
  'internal private none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'internal disabled none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'public private none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'public disabled none': ['NOT_ALLOWLISTED', NOT_ALLOWED]
})

// Two features listed: every one must be at least enabled (builds varies, repository enabled).
// Outside the allowlist the artifacts are refused even then: their read_job_artifacts needs a
// role unless the build's artifacts are public, which the gate cannot see.
table(ARTIFACTS, 'builds', {
  '* * default': 'DEFAULT_PERMISSIONS',
  'private * none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'private * fine-grained': ['MISSING_POLICIES', needs('read_jobs')],
  'internal enabled none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'internal enabled fine-grained': 'PUBLIC_PROJECT_FEATURES',
  'public enabled none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'public enabled fine-grained': 'PUBLIC_PROJECT_FEATURES',
  'internal private none': ['MISSING_POLICIES', needs('read_jobs')],
  'internal disabled none': ['MISSING_POLICIES', needs('read_jobs')],
  'public private none': ['MISSING_POLICIES', needs('read_jobs')],
  'public disabled none': ['MISSING_POLICIES', needs('read_jobs')],
  'internal private fine-grained': ['MISSING_POLICIES', needs('read_jobs')],
  'internal disabled fine-grained': ['MISSING_POLICIES', needs('read_jobs')],
  'public private fine-grained': ['MISSING_POLICIES', needs('read_jobs')],
  'public disabled fine-grained': ['MISSING_POLICIES', needs('read_jobs')]
})

for (const row of rows) {
  test(`public projects: ${row.route.id}, ${row.visibility} project, ${row.feature} ${row.level}, allowlisted: ${row.allowlisted} → ${row.reason}`, () => {
    const f = facts(row.visibility, { ...ALL_ENABLED, [row.feature]: row.level })
    const decision: Decision = decide(row.route, JOB, ACCESSED, grants(row.allowlisted), ON, policies, f)
    assert.equal(decision.reason, row.reason)
    assert.equal(decision.allow, !(row.reason in errors))
    if (decision.allow) return
    assert.equal(decision.needsFacts, undefined, 'decided with the facts: nothing more to ask')
    if (row.message !== undefined) assert.equal(decision.message, row.message)
  })
}

// Features listed, but the handler's read is one ProjectPolicy gives a job outside the allowlist
// only by its user's role: refused here, whatever GitLab's (possibly stale) allowlist would say.
table(PIPELINES, 'builds', {
  '* * default': 'DEFAULT_PERMISSIONS',
  'private * none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'private * fine-grained': ['MISSING_POLICIES', needs('read_pipelines')],
  'internal enabled none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'public enabled none': ['NOT_ALLOWLISTED', NOT_ALLOWED],
  'internal enabled fine-grained': 'PUBLIC_PROJECT_FEATURES',
  'public enabled fine-grained': 'PUBLIC_PROJECT_FEATURES',
  'internal private none': ['MISSING_POLICIES', needs('read_pipelines')],
  'internal disabled none': ['MISSING_POLICIES', needs('read_pipelines')],
  'public private none': ['MISSING_POLICIES', needs('read_pipelines')],
  'public disabled none': ['MISSING_POLICIES', needs('read_pipelines')],
  'internal private fine-grained': ['MISSING_POLICIES', needs('read_pipelines')],
  'internal disabled fine-grained': ['MISSING_POLICIES', needs('read_pipelines')],
  'public private fine-grained': ['MISSING_POLICIES', needs('read_pipelines')],
  'public disabled fine-grained': ['MISSING_POLICIES', needs('read_pipelines')]
})

test('public projects: job artifacts are refused outside the allowlist (read_job_artifacts: a role\'s, unless the build\'s artifacts are public)', () => {
  for (const visibility of ['internal', 'public'] as const) {
    for (const level of ['enabled', 'public'] as const) {
      const closed = decide(ARTIFACTS, JOB, ACCESSED, grants('none'), ON, policies, facts(visibility, { ...ALL_ENABLED, builds: level, repository: level }))
      assert.equal(closed.reason, 'NOT_ALLOWLISTED')
      assert.ok(!closed.allow)
      assert.equal(closed.message, NOT_ALLOWED)
    }
    // An allowlisted job's role is GitLab's to check.
    assert.equal(decide(ARTIFACTS, JOB, ACCESSED, grants('fine-grained'), ON, policies, facts(visibility, ALL_ENABLED)).reason, 'PUBLIC_PROJECT_FEATURES')
  }
})

test('public projects: a pipeline\'s jobs are refused outside the allowlist (read_pipeline), public pipelines or not', () => {
  const outside = decide(PIPELINE_JOBS, JOB, ACCESSED, grants('none'), ON, policies, facts('public', ALL_ENABLED))
  assert.equal(outside.reason, 'NOT_ALLOWLISTED')
  assert.equal(decide(PIPELINE_JOBS, JOB, ACCESSED, grants('fine-grained'), ON, policies, facts('public', ALL_ENABLED)).reason, 'PUBLIC_PROJECT_FEATURES')
})

test('public projects: an unknown project (no grants) is an empty allowlist, opened by the same rule', () => {
  assert.equal(decide(PACKAGE_READ, JOB, ACCESSED, null, ON, policies, facts('public', ALL_ENABLED)).reason, 'PUBLIC_PROJECT_FEATURES')
  const denied = decide(PACKAGE_READ, JOB, ACCESSED, null, ON, policies, facts('private', ALL_ENABLED))
  assert.equal(denied.reason, 'UNKNOWN_PROJECT')
  assert.ok(!denied.allow)
  assert.equal(denied.message, NOT_ALLOWED, 'named by the facts\' short path')
})

test('public projects: a "public" feature level counts as at least enabled', () => {
  assert.equal(decide(PACKAGE_READ, JOB, ACCESSED, grants('none'), ON, policies, facts('internal', { ...ALL_ENABLED, package_registry: 'public' })).reason, 'PUBLIC_PROJECT_FEATURES')
  assert.equal(decide(REGISTRY_READ, JOB, ACCESSED, grants('none'), ON, policies, facts('public', { ...ALL_ENABLED, container_registry: 'public' })).reason, 'PUBLIC_PROJECT_READ')
})

test('public projects: a feature GitLab did not report reads as disabled', () => {
  const { builds: _builds, ...noBuilds } = ALL_ENABLED
  assert.equal(decide(ARTIFACTS, JOB, ACCESSED, grants('none'), ON, policies, facts('public', noBuilds)).reason, 'MISSING_POLICIES')
})

test('public projects: without facts a deny that they could turn asks for them, and reads as private', () => {
  const outside = decide(PACKAGE_READ, JOB, ACCESSED, grants('none'), ON, policies)
  assert.ok(!outside.allow)
  assert.equal(outside.reason, 'NOT_ALLOWLISTED')
  assert.equal(outside.needsFacts, true)
  assert.equal(outside.message, NOT_ALLOWED, 'the store\'s path names the project meanwhile')
  const fineGrained = decide(PACKAGE_READ, JOB, ACCESSED, grants('fine-grained'), ON, policies)
  assert.ok(!fineGrained.allow)
  assert.equal(fineGrained.needsFacts, true, 'the route lists features: a public project would pass')
})

test('public projects: no facts are asked for where they cannot change the answer', () => {
  // An allowlisted job on a route that lists no features: the policy check alone decides.
  const denied = decide(RELEASE_READ, JOB, ACCESSED, grants('fine-grained'), ON, policies)
  assert.ok(!denied.allow)
  assert.equal(denied.needsFacts, undefined)
  // Allows never ask.
  for (const allowlisted of ['default'] as const) {
    for (const r of [PACKAGE_READ, RELEASE_READ, REGISTRY_READ, ARTIFACTS]) {
      assert.equal(decide(r, JOB, ACCESSED, grants(allowlisted), ON, policies).allow, true)
    }
  }
  assert.equal(decide(PACKAGE_READ, { ...JOB, jobProjectId: ACCESSED }, ACCESSED, grants('none'), ON, policies).reason, 'SELF_ACCESS')
  assert.equal(decide(PACKAGE_READ, JOB, ACCESSED, { ...grants('none'), inboundEnabled: false }, createInstanceSettings({ enforceInboundScope: false }), policies).reason, 'INBOUND_DISABLED')
})

test('public projects: the facts\' short path names the accessed project over the store\'s', () => {
  const renamed: ProjectFacts = { ...facts('private', ALL_ENABLED), path: 'renamed' }
  const denied = decide(PACKAGE_READ, JOB, ACCESSED, grants('none'), ON, policies, renamed)
  assert.ok(!denied.allow)
  assert.equal(denied.message, '403 Forbidden - Authentication by CI/CD job token not allowed from job to renamed.')
})
