// The job token scope decision, in GitLab's order (docs/gitlab-rules.md, "The decision";
// app/models/ci/job_token/scope.rb, lib/api/helpers.rb). A pure function of the endpoint, the
// job's identity and the accessed project's grants: no I/O, no clock, no state, so it is tested
// by tables and properties and gives the same answer on every replica for the same inputs.

import type { CatalogRoute } from '../catalog/types.ts'
import type { AllowlistEntry, InstanceSettings, ProjectGrants } from '../grants/model.ts'
import type { PolicyIndex } from '../catalog/policy-index.ts'
import type { AllowReason } from '../errors.ts'

/**
 * What the decision knows of the job: its project and that project's groups. Not the resolved
 * identity of src/identity/types.ts (JobIdentity), which adds the job, its user and the expiry.
 */
export interface DecisionSubject {
  readonly jobProjectId: number
  /** Used in the not-allowlisted message; `project #<id>` when unknown. */
  readonly jobProjectPath?: string
  /** The job project's ancestor groups, nearest first (subgroup, its parent, ..., root). */
  readonly ancestorGroupIds: readonly number[]
}

/** Allow reasons are listed in src/errors.ts with every other reason. */
export type { AllowReason }

/** Deny reasons are codes of src/errors.ts: the log field, metric label and response `code`. */
export type DenyReason =
  | 'NOT_ALLOWLISTED'
  | 'UNKNOWN_PROJECT'
  | 'NO_POLICIES_FOR_ENDPOINT'
  | 'MISSING_POLICIES'

export type ReasonCode = AllowReason | DenyReason

export type Decision =
  | { readonly allow: true, readonly reason: AllowReason }
  | { readonly allow: false, readonly reason: DenyReason, readonly missingPolicies: string[], readonly message: string }

// Allow decisions carry no per-request data, so they are shared constants.
const ALLOW = {
  SELF_ACCESS: Object.freeze({ allow: true, reason: 'SELF_ACCESS' }),
  INBOUND_DISABLED: Object.freeze({ allow: true, reason: 'INBOUND_DISABLED' }),
  UNKNOWN_PROJECT_ALLOWED: Object.freeze({ allow: true, reason: 'UNKNOWN_PROJECT_ALLOWED' }),
  DEFAULT_PERMISSIONS: Object.freeze({ allow: true, reason: 'DEFAULT_PERMISSIONS' }),
  SKIP_POLICIES: Object.freeze({ allow: true, reason: 'SKIP_POLICIES' }),
  POLICIES_GRANTED: Object.freeze({ allow: true, reason: 'POLICIES_GRANTED' })
} as const satisfies Record<AllowReason, Decision>

/**
 * Hot path: runs once per job-token request after routing and grant lookup.
 * `accessedProjectId` is the resolved numeric id; `grants` is null when the store knows
 * nothing about that project.
 */
export function decide (
  route: CatalogRoute,
  identity: DecisionSubject,
  accessedProjectId: number,
  grants: ProjectGrants | null,
  settings: InstanceSettings,
  policies: PolicyIndex
): Decision {
  // 1. Self access never consults the allowlist.
  if (identity.jobProjectId === accessedProjectId) return ALLOW.SELF_ACCESS

  if (grants === null) {
    if (settings.unknownProject === 'allow') return ALLOW.UNKNOWN_PROJECT_ALLOWED
    // As GitLab with enforcement on and an empty allowlist.
    return deny('UNKNOWN_PROJECT', [], notAllowlistedMessage(identity, accessedProjectId))
  }

  // 2. Inbound allowlist off only when both the project and the instance say so.
  if (!grants.inboundEnabled && !settings.enforceInboundScope) return ALLOW.INBOUND_DISABLED

  // 3. The one nearest entry; entries are never merged.
  const entry = nearestEntry(grants.entries, identity)
  if (entry === null) return deny('NOT_ALLOWLISTED', [], notAllowlistedMessage(identity, accessedProjectId))

  // 4. Default permissions: the job's user role decides upstream, no policy check.
  if (entry.defaultPermissions) return ALLOW.DEFAULT_PERMISSIONS

  // 5. Fine-grained entry.
  if (route.skipPolicies) return ALLOW.SKIP_POLICIES
  if (route.policies.length === 0) return deny('NO_POLICIES_FOR_ENDPOINT', [], 'This action is unauthorized for CI/CD job tokens.')
  let missing: string[] | null = null
  for (const required of route.policies) {
    if (!policies.satisfies(entry.jobTokenPolicies, required)) (missing ??= []).push(required)
  }
  if (missing === null) return ALLOW.POLICIES_GRANTED
  return deny('MISSING_POLICIES', missing, missingPoliciesMessage(route.policies, accessedProjectId))
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

function deny (reason: DenyReason, missingPolicies: string[], message: string): Decision {
  return { allow: false, reason, missingPolicies, message }
}

// GitLab's wording (lib/api/helpers.rb; docs/gitlab-rules.md, "The 403 messages"). GitLab names
// projects by their short `path` and prefixes "403 Forbidden - " through `forbidden!`; the gate
// names the accessed project by id because a path-less request may only carry the id.
/** `accessed`: the project's id, or its full path where the id is unknown (a path in the URL the store does not know). */
export function notAllowlistedMessage (identity: DecisionSubject, accessed: number | string): string {
  const from = identity.jobProjectPath ?? `project #${identity.jobProjectId}`
  return `Authentication by CI/CD job token not allowed from ${from} to project ${typeof accessed === 'number' ? `#${accessed}` : accessed}.`
}

/** Names every policy the endpoint requires, as GitLab does, not only the missing ones. */
export function missingPoliciesMessage (required: readonly string[], accessedProjectId: number): string {
  const which = required.length === 1
    ? `The following token permission is required: ${required[0]!}.`
    : `The following token permissions are required: ${toSentence(required)}.`
  return `403 Forbidden - Insufficient permissions to access this resource in project #${accessedProjectId}. ${which}`
}

/** "a", "a and b", "a, b and c" (Rails' `to_sentence` writes "a, b, and c": docs/gitlab-rules.md, "The 403 messages"). */
export function toSentence (words: readonly string[]): string {
  if (words.length <= 1) return words.join('')
  return `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]!}`
}
