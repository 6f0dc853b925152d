// The job token scope decision, in GitLab's order (docs/gitlab-rules.md, "The decision" and
// "Public and internal projects"; app/models/ci/job_token/scope.rb, lib/api/helpers.rb,
// app/policies/project_policy.rb). A pure function of the endpoint, the job's identity, the
// accessed project's grants and, where the answer depends on them, its root namespace's
// `job_token_policies_enabled` and the accessed project's facts (visibility, features): no I/O,
// no clock, no state, so it is tested by tables and properties and gives the same answer on
// every replica for the same inputs.

import type { CatalogRoute } from '../catalog/types.ts'
import type { AllowlistEntry, InstanceSettings, ProjectGrants } from '../grants/model.ts'
import type { PolicyIndex } from '../catalog/policy-index.ts'
import { errors, type AllowReason } from '../errors.ts'
import type { FeatureAccessLevel, ProjectFacts } from '../projects/facts.ts'
import { loggedPath } from '../text.ts'

/**
 * What the decision knows of the job: its project and that project's groups. Not the resolved
 * identity of src/identity/types.ts (JobIdentity), which adds the job, its user and the expiry.
 */
export interface DecisionSubject {
  readonly jobProjectId: number
  /** The job project's full path; its last segment names it in the not-allowlisted message (`project #<id>` when unknown). */
  readonly jobProjectPath?: string
  /** The job project's ancestor groups, nearest first (subgroup, its parent, ..., root). */
  readonly ancestorGroupIds: readonly number[]
}

/** Allow reasons are listed in src/errors.ts with every other reason. */
export type { AllowReason }

/** Deny reasons are codes of src/errors.ts: the log field, metric label and response `code`. */
export type DenyReason =
  | 'JOB_TOKEN_SCOPE_PROJECT_ONLY'
  | 'NOT_ALLOWLISTED'
  | 'UNKNOWN_PROJECT'
  | 'NO_POLICIES_FOR_ENDPOINT'
  | 'MISSING_POLICIES'

export type ReasonCode = AllowReason | DenyReason

export type Decision =
  | { readonly allow: true, readonly reason: AllowReason }
  | {
    readonly allow: false
    readonly reason: DenyReason
    readonly missingPolicies: string[]
    readonly message: string
    /**
     * Decided without the accessed project's facts, which could change it (a public or internal
     * project): decide again with them. The deny is what a private project gets.
     */
    readonly needsFacts?: true
    /**
     * Decided with the root namespace's setting NAMESPACE_UNREAD, and a fine-grained entry's
     * policy check failed: the namespace's `job_token_policies_enabled` could turn it. Decide
     * again with it. The deny is what enforced policies give.
     */
    readonly needsNamespace?: true
  }

/**
 * The accessed project's root namespace `job_token_policies_enabled` as decide() takes it: true or
 * false where stored, null where not (the instance decides), NAMESPACE_UNREAD when the caller has
 * not read it yet (the hot path reads it only for a deny it could turn).
 */
export type NamespacePolicies = boolean | null | typeof NAMESPACE_UNREAD
export const NAMESPACE_UNREAD = 'unread'

// Allow decisions carry no per-request data, so they are shared constants.
const ALLOW = {
  SELF_ACCESS: Object.freeze({ allow: true, reason: 'SELF_ACCESS' }),
  INBOUND_DISABLED: Object.freeze({ allow: true, reason: 'INBOUND_DISABLED' }),
  UNKNOWN_PROJECT_ALLOWED: Object.freeze({ allow: true, reason: 'UNKNOWN_PROJECT_ALLOWED' }),
  DEFAULT_PERMISSIONS: Object.freeze({ allow: true, reason: 'DEFAULT_PERMISSIONS' }),
  FINE_GRAINED_POLICIES_OFF: Object.freeze({ allow: true, reason: 'FINE_GRAINED_POLICIES_OFF' }),
  SKIP_POLICIES: Object.freeze({ allow: true, reason: 'SKIP_POLICIES' }),
  POLICIES_GRANTED: Object.freeze({ allow: true, reason: 'POLICIES_GRANTED' }),
  PUBLIC_PROJECT_FEATURES: Object.freeze({ allow: true, reason: 'PUBLIC_PROJECT_FEATURES' }),
  PUBLIC_PROJECT_READ: Object.freeze({ allow: true, reason: 'PUBLIC_PROJECT_READ' })
} as const satisfies Record<AllowReason, Decision>

const NO_FEATURES: readonly string[] = Object.freeze([])

/** The route's `allow_public_access_for_enabled_project_features` (catalog `publicAccessFeatures`). */
function publicAccessFeaturesOf (route: CatalogRoute): readonly string[] {
  return route.publicAccessFeatures ?? NO_FEATURES
}

/**
 * Hot path: runs once per job-token request after routing and grant lookup.
 * `accessedProjectId` is the resolved numeric id; `grants` is null when the store knows
 * nothing about that project; `facts` are the accessed project's, when looked up (a deny with
 * `needsFacts` asks for them; an allow never does); `namespace` is its root namespace's
 * setting (omitted: none stored; NAMESPACE_UNREAD: a deny it could turn says `needsNamespace`).
 */
export function decide (
  route: CatalogRoute,
  identity: DecisionSubject,
  accessedProjectId: number,
  grants: ProjectGrants | null,
  settings: InstanceSettings,
  policies: PolicyIndex,
  facts?: ProjectFacts,
  namespace: NamespacePolicies = null
): Decision {
  // 0. job_token_scope: :project (the container registry repositories API): the job's own project
  // only, allowlisted or not; find_project! checks it first (lib/api/helpers.rb, authorized_project_scope?).
  if (route.jobTokenScope === 'project' && identity.jobProjectId !== accessedProjectId) {
    return { allow: false, reason: 'JOB_TOKEN_SCOPE_PROJECT_ONLY', missingPolicies: [], message: errors.JOB_TOKEN_SCOPE_PROJECT_ONLY.message }
  }

  // 1. Self access never consults the allowlist.
  if (identity.jobProjectId === accessedProjectId) return ALLOW.SELF_ACCESS

  if (grants === null && settings.unknownProject === 'allow') return ALLOW.UNKNOWN_PROJECT_ALLOWED

  // 2. Inbound allowlist off only when both the project and the instance say so. A project the
  // store does not know is as GitLab with enforcement on and an empty allowlist.
  if (grants !== null && !grants.inboundEnabled && !settings.enforceInboundScope) return ALLOW.INBOUND_DISABLED

  // 3. The one nearest entry; entries are never merged.
  const entry = grants === null ? null : nearestEntry(grants.entries, identity)
  if (entry === null) return notInScope(route, identity, accessedProjectId, grants, facts)

  // 4. Default permissions: the job's user role decides upstream, no policy check.
  if (entry.defaultPermissions) return ALLOW.DEFAULT_PERMISSIONS
  // Older GitLab: with fine-grained policies off a fine-grained entry acts as default permissions.
  // Unknown (the root namespace not read): the policies are checked, and only a deny, which the
  // namespace could turn, asks for it: the allowed hot path reads nothing more.
  const enforced = namespace === NAMESPACE_UNREAD ? grants!.jobTokenPoliciesEnabled : policiesEnforced(grants, settings, namespace)
  if (enforced === false) return ALLOW.FINE_GRAINED_POLICIES_OFF
  const checked = fineGrainedCheck(route, entry, accessedProjectId, grants, policies, facts)
  if (checked.allow || enforced === true) return checked
  return { ...checked, needsNamespace: true }
}

/** 5. Fine-grained entry: GitLab's job_token_policies_authorized? (skip, public features, policies). */
function fineGrainedCheck (route: CatalogRoute, entry: AllowlistEntry, accessedProjectId: number, grants: ProjectGrants | null, policies: PolicyIndex, facts: ProjectFacts | undefined): Decision {
  if (route.skipPolicies) return ALLOW.SKIP_POLICIES
  let missing: string[] | null = null
  for (const required of route.policies) {
    if (!policies.satisfies(entry.jobTokenPolicies, required)) (missing ??= []).push(required)
  }
  if (missing === null && route.policies.length > 0) return ALLOW.POLICIES_GRANTED
  const features = publicAccessFeaturesOf(route)
  if (features.length > 0) {
    if (facts === undefined) return policyDeny(route, missing, accessedProjectId, grants, facts, true)
    if (publicFeatures(features, facts)) return ALLOW.PUBLIC_PROJECT_FEATURES
  }
  return policyDeny(route, missing, accessedProjectId, grants, facts, false)
}

/**
 * No entry with the allowlist on (or a project the store does not know). A private project is
 * refused. A public or internal one (app/policies/project_policy.rb): GitLab's find_project!
 * needs `read_project`, which ProjectPolicy gives a job token from outside the allowlist only
 * through the package registry; then the policy check, passed only by skip-policies routes and
 * routes whose listed features are all at least enabled (publicly_accessible_feature?); then the
 * endpoint's own read, which ProjectPolicy gives per feature, and which the gate decides itself.
 */
function notInScope (route: CatalogRoute, identity: DecisionSubject, accessedProjectId: number, grants: ProjectGrants | null, facts: ProjectFacts | undefined): Decision {
  const refused = grants === null ? 'UNKNOWN_PROJECT' : 'NOT_ALLOWLISTED'
  if (facts === undefined) return notAllowed(refused, identity, accessedProjectId, grants, facts, true)
  if (facts.visibility === 'private') return notAllowed(refused, identity, accessedProjectId, grants, facts, false)
  if (!jobTokenReads(facts.features.package_registry)) return notAllowed(refused, identity, accessedProjectId, grants, facts, false)
  const features = publicAccessFeaturesOf(route)
  const publicRoute = features.length > 0 && publicFeatures(features, facts)
  if (!route.skipPolicies && !publicRoute) return policyDeny(route, null, accessedProjectId, grants, facts, false)
  if (!isRead(route)) return notAllowed(refused, identity, accessedProjectId, grants, facts, false)
  // Step 3, the endpoint's own read, is decided here and never left to GitLab: GitLab's copy of
  // the allowlist goes stale once the gate owns it, and where it still lists the job GitLab gives
  // the job its user's role, so a read ProjectPolicy keeps from jobs outside the allowlist
  // (pipelines, merge requests, commits, confidential issues) would reach it by that role.
  const reads = readFeatures(route)
  if (reads === null) return notAllowed(refused, identity, accessedProjectId, grants, facts, false)
  for (const feature of reads) {
    if (!jobTokenReads(facts.features[feature])) return notAllowed(refused, identity, accessedProjectId, grants, facts, false)
  }
  return publicRoute ? ALLOW.PUBLIC_PROJECT_FEATURES : ALLOW.PUBLIC_PROJECT_READ
}

/** publicly_accessible_feature? (lib/api/helpers.rb): a public or internal project, every listed feature at least enabled. */
function publicFeatures (features: readonly string[], facts: ProjectFacts): boolean {
  if (facts.visibility === 'private') return false
  for (const feature of features) {
    const level = facts.features[feature]
    if (level !== 'enabled' && level !== 'public') return false
  }
  return true
}

/**
 * ProjectPolicy's job_token_access_allowed_to? for a job outside the allowlist: "enabled" or
 * "public" allows; "private" asks the allowlist (which has no entry here); "disabled" refuses.
 */
function jobTokenReads (level: FeatureAccessLevel | undefined): boolean {
  return level === 'enabled' || level === 'public'
}

// ProjectPolicy's reads for job tokens of public and internal projects, by the catalog policy
// that guards them: job_token_package_registry → read_package, job_token_container_registry →
// read_container_image, job_token_releases → read_release, job_token_environments →
// read_environment. Not job_token_builds' read_commit_status: job artifacts (read_jobs) need
// read_build, which public pipelines give, and then read_job_artifacts on the build the handler
// finds (authorize_read_job_artifacts!), which Ci::BuildPolicy keeps to developer_access, a
// role's, unless that build's artifacts are public (`artifacts:access`), which the gate cannot see.
const FEATURE_OF_POLICY: Readonly<Record<string, string>> = Object.freeze({
  read_packages: 'package_registry',
  read_containers: 'container_registry',
  read_releases: 'releases',
  read_environments: 'environments'
})
// Skip-policies routes have no policy: their resource says which read they are.
const FEATURE_OF_RESOURCE: Readonly<Record<string, string>> = Object.freeze({
  packages: 'package_registry',
  container_registry: 'container_registry',
  releases: 'releases',
  environments: 'environments'
})

/** A read: GET, or a route guarded by read policies only (npm's POST audits). */
function isRead (route: CatalogRoute): boolean {
  if (route.method === 'GET') return true
  return route.policies.length > 0 && route.policies.every(p => p.startsWith('read_'))
}

/** The features whose job-token read the route is; null when ProjectPolicy opens none of them by feature. */
function readFeatures (route: CatalogRoute): readonly string[] | null {
  // A read whose endpoint needs an ability ProjectPolicy gives only by role (catalog: roleAbility).
  if (route.roleAbility !== undefined) return null
  if (route.policies.length === 0) {
    const feature = FEATURE_OF_RESOURCE[route.resource]
    return feature === undefined ? null : [feature]
  }
  const features: string[] = []
  for (const policy of route.policies) {
    const feature = FEATURE_OF_POLICY[policy]
    if (feature === undefined) return null
    features.push(feature)
  }
  return features
}

/**
 * Whether `decision` is an allow an internal project's features give a job outside its allowlist.
 * GitLab gives those reads (ProjectPolicy's job_token_* rules) only where
 * `project_allowed_for_job_token` holds, which `internal_access` makes true on an internal project
 * for every user but GitLab's external users: for a job of an external user GitLab refuses them
 * (`prevent_all`) by its own copy of the allowlist, which goes stale once the gate owns it, and
 * where that copy still lists the job, gives the job its user's role. decide() does not know the
 * job's user: the caller asks whether it is external before it lets such a job through.
 */
export function opensInternalProject (decision: Decision, facts: ProjectFacts | undefined, grants: ProjectGrants | null, identity: DecisionSubject): boolean {
  if (!decision.allow || (decision.reason !== 'PUBLIC_PROJECT_FEATURES' && decision.reason !== 'PUBLIC_PROJECT_READ')) return false
  return facts?.visibility === 'internal' && (grants === null || nearestEntry(grants.entries, identity) === null)
}

/**
 * Whether fine-grained policies are enforced for the accessed project: the project's own
 * `jobTokenPoliciesEnabled`, else its root namespace's `job_token_policies_enabled` where the
 * store records it, else the instance setting (Scope#policies_allowed?, older versions:
 * `return true unless accessed_project.job_token_policies_enabled?`, which GitLab reads from the
 * root namespace's settings).
 */
export function policiesEnforced (grants: ProjectGrants | null, settings: InstanceSettings, namespace: boolean | null = null): boolean {
  return grants?.jobTokenPoliciesEnabled ?? namespace ?? settings.fineGrainedPolicies !== 'off'
}

/**
 * The project entry naming the job project, else the entry of its nearest ancestor group.
 * One pass over at most 400 entries (the limits), without building an index per request.
 */
export function nearestEntry (entries: readonly AllowlistEntry[], identity: DecisionSubject): AllowlistEntry | null {
  const ancestors = identity.ancestorGroupIds
  let best: AllowlistEntry | null = null
  let bestRank = ancestors.length
  for (const entry of entries) {
    if (entry.targetType === 'project') {
      if (entry.targetId === identity.jobProjectId) return entry
    } else if (bestRank > 0) {
      const rank = ancestors.indexOf(entry.targetId)
      if (rank !== -1 && rank < bestRank) {
        best = entry
        bestRank = rank
      }
    }
  }
  return best
}

function notAllowed (reason: 'NOT_ALLOWLISTED' | 'UNKNOWN_PROJECT', identity: DecisionSubject, accessedProjectId: number, grants: ProjectGrants | null, facts: ProjectFacts | undefined, needsFacts: boolean): Decision {
  const message = notAllowlistedMessage(jobProjectName(identity), accessedProjectName(accessedProjectId, grants, facts))
  return needsFacts ? { allow: false, reason, missingPolicies: [], message, needsFacts } : { allow: false, reason, missingPolicies: [], message }
}

/** The policy check failed: GitLab names every policy the route requires, not only the missing ones. */
function policyDeny (route: CatalogRoute, missing: string[] | null, accessedProjectId: number, grants: ProjectGrants | null, facts: ProjectFacts | undefined, needsFacts: boolean): Decision {
  const deny = route.policies.length === 0
    ? { allow: false as const, reason: 'NO_POLICIES_FOR_ENDPOINT' as const, missingPolicies: [], message: errors.NO_POLICIES_FOR_ENDPOINT.message }
    : { allow: false as const, reason: 'MISSING_POLICIES' as const, missingPolicies: missing ?? [...route.policies], message: missingPoliciesMessage(route.policies, accessedProjectName(accessedProjectId, grants, facts)) }
  return needsFacts ? { ...deny, needsFacts } : deny
}

// GitLab's wording (lib/api/helpers.rb: handle_job_token_failure!,
// job_token_policies_unauthorized_message; forbidden! adds "403 Forbidden - "). Projects are named
// by their short `path`; docs/gitlab-rules.md, "The 403 messages". Messages that name no project
// are the errors table's (NO_POLICIES_FOR_ENDPOINT, JOB_TOKEN_SCOPE_PROJECT_ONLY).

/**
 * Hot path (every not-allowlisted deny): the same two projects get the same string, built once,
 * whose hash V8 keeps, so the answer's JSON (respond.ts caches it by message) is found without
 * hashing a new 100-character text per deny. Past NOT_ALLOWLISTED_KEPT messages the cache starts
 * over, so its memory stays bounded.
 */
const NOT_ALLOWLISTED_KEPT = 1000
let notAllowlisted = new Map<string, Map<string, string>>()
let notAllowlistedCount = 0

/**
 * `jobProject` and `accessedProject`: short paths (see shortPath), as GitLab names them. A project
 * the gate does not know is named as the request's path names it: a token pasted there is
 * answered `[token]`, as the log writes it (loggedPath).
 */
export function notAllowlistedMessage (jobProject: string, accessedProject: string): string {
  let byAccessed = notAllowlisted.get(jobProject)
  let message = byAccessed?.get(accessedProject)
  if (message !== undefined) return message
  if (notAllowlistedCount >= NOT_ALLOWLISTED_KEPT) {
    notAllowlisted = new Map()
    notAllowlistedCount = 0
    byAccessed = undefined
  }
  if (byAccessed === undefined) notAllowlisted.set(jobProject, byAccessed = new Map())
  message = `403 Forbidden - Authentication by CI/CD job token not allowed from ${jobProject} to ${loggedPath(accessedProject)}.`
  byAccessed.set(accessedProject, message)
  notAllowlistedCount++
  return message
}

/** Names every policy the endpoint requires, as GitLab does, not only the missing ones. */
export function missingPoliciesMessage (required: readonly string[], accessedProject: string): string {
  const which = required.length === 1
    ? `The following token permission is required: ${required[0]!}.`
    : `The following token permissions are required: ${toSentence(required)}.`
  return `403 Forbidden - Insufficient permissions to access this resource in project ${loggedPath(accessedProject)}. ${which}`
}

/** Rails' Array#to_sentence in English: "a", "a and b", "a, b, and c". */
export function toSentence (words: readonly string[]): string {
  if (words.length <= 2) return words.join(' and ')
  return `${words.slice(0, -1).join(', ')}, and ${words[words.length - 1]!}`
}

/** A full path's last segment (`group/sub/project` → `project`): GitLab's `project.path`. */
export function shortPath (fullPath: string): string {
  return fullPath.slice(fullPath.lastIndexOf('/') + 1)
}

/** The job project as GitLab's message names it: its short path, or `project #<id>` when unknown. */
export function jobProjectName (identity: DecisionSubject): string {
  return identity.jobProjectPath === undefined || identity.jobProjectPath === '' ? `project #${identity.jobProjectId}` : shortPath(identity.jobProjectPath)
}

/**
 * The accessed project's short path: from GitLab's facts when they were looked up, else from the
 * store, which keeps every configured project's full path (no GitLab call for a deny only to
 * name the project), else `project #<id>`.
 */
function accessedProjectName (accessedProjectId: number, grants: ProjectGrants | null, facts: ProjectFacts | undefined): string {
  if (facts?.path != null) return facts.path
  if (grants !== null) return shortPath(grants.projectPath)
  if (facts?.fullPath != null) return shortPath(facts.fullPath)
  return `project #${accessedProjectId}`
}
