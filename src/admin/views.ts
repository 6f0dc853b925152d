// The configuration API's JSON shapes (GitLab's snake_case, lib/api/project_job_token_scope.rb
// extended with policies) and the request checks that speak in its field names. Pure functions.

import type { ValidationIssue } from '../grants/errors.ts'
import type { AllowlistEntry, EntryTargetType, ProjectGrants } from '../grants/model.ts'
import { effectiveRule, validatePackageRules, type PackageFormatRule, type PackageRules } from '../grants/package-rules-model.ts'
import type { PolicyIndex } from '../catalog/policy-index.ts'
import type { Actor } from './service.ts'
import { quoted } from '../text.ts'

export function entryView (entry: AllowlistEntry): Record<string, unknown> {
  return {
    id: entry.targetId,
    ...(entry.targetType === 'project'
      ? (entry.targetPath === undefined ? {} : { path_with_namespace: entry.targetPath })
      : (entry.targetPath === undefined ? {} : { full_path: entry.targetPath })),
    default_permissions: entry.defaultPermissions,
    job_token_policies: entry.jobTokenPolicies,
    added_by: entry.addedBy,
    created_at: entry.createdAt
  }
}

/** `POST` and `PATCH` answers: GitLab's `{source_project_id, target_project_id}` plus the policies. */
export function linkView (projectId: number, entry: AllowlistEntry): Record<string, unknown> {
  return {
    source_project_id: projectId,
    [entry.targetType === 'project' ? 'target_project_id' : 'target_group_id']: entry.targetId,
    default_permissions: entry.defaultPermissions,
    job_token_policies: entry.jobTokenPolicies
  }
}

/**
 * GET and PATCH /job_token_permissions: the per package format rules, and the project's own
 * `job_token_policies_enabled`, over its root namespace's (null: the root namespace's, else the
 * instance's GATE_FINE_GRAINED_POLICIES, decides).
 */
export function permissionsView (doc: ProjectGrants, formats: readonly string[]): { package_registry: Record<string, unknown>, job_token_policies_enabled: boolean | null } {
  const out: Record<string, unknown> = {}
  for (const format of formats) out[format] = effectiveRule(doc.packageRules?.[format])
  return { package_registry: out, job_token_policies_enabled: doc.jobTokenPoliciesEnabled ?? null }
}

/** `job_token_policies_enabled` of a PATCH: true, false, or null (back to the instance setting). */
export function policiesEnabledSetting (value: unknown, issues: ValidationIssue[]): boolean | null {
  if (value === null || value === '') return null
  const parsed = parseBool(value)
  if (parsed === null) issues.push({ path: 'job_token_policies_enabled', message: 'must be true, false or null' })
  return parsed
}

/** GET and PUT /groups/:id/job_token_policies: the root namespace (its lower-cased path) and its setting. */
export function namespacePoliciesView (namespacePath: string, enabled: boolean | null): { full_path: string, job_token_policies_enabled: boolean | null } {
  return { full_path: namespacePath, job_token_policies_enabled: enabled }
}

/** A root namespace's audit event, as auditView with `namespace` for `project_id`. */
export function namespaceAuditView (event: { namespacePath: string, actor: Actor, action: string, before: unknown, after: unknown, time: string, requestId: string }): Record<string, unknown> {
  const { project_id: _none, ...rest } = auditView({ ...event, projectId: 0 })
  return { namespace: event.namespacePath, ...rest }
}

export function auditView (event: { projectId: number, actor: Actor, action: string, before: unknown, after: unknown, time: string, requestId: string }): Record<string, unknown> {
  return {
    project_id: event.projectId,
    actor: event.actor.kind === 'operator' ? { type: 'operator' } : { type: 'user', id: event.actor.id, ...(event.actor.username === undefined ? {} : { username: event.actor.username }) },
    action: event.action,
    before: event.before,
    after: event.after,
    created_at: event.time,
    request_id: event.requestId
  }
}

/** A positive integer id, given as a JSON number or (form, query, path) a string of digits. */
export function parseId (value: unknown): number | null {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value
  if (typeof value === 'string' && /^[1-9]\d{0,15}$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value)
  return null
}

function parseBool (value: unknown): boolean | null {
  if (typeof value === 'boolean') return value
  if (value === 'true') return true
  if (value === 'false') return false
  return null
}

/** Policy-name problems, named by the API field. */
export function policyIssues (raw: unknown, field: string, policies: PolicyIndex, issues: ValidationIssue[]): string[] {
  const names: string[] = []
  if (!Array.isArray(raw)) {
    issues.push({ path: field, message: 'must be an array of policy names' })
    return names
  }
  // Longer than there are policies, it names one twice or one that is none: refused whole,
  // unread. A GraphQL document hands one variable to each of its aliased mutations, and reading
  // a list of 200,000 names in each of 150 took 20 s of CPU for one request.
  if (raw.length > policies.size) {
    issues.push({ path: field, message: `lists ${raw.length} policies; there are ${policies.size} job token policies, each listed at most once` })
    return names
  }
  raw.forEach((name: unknown, i: number) => {
    const at = `${field}[${i}]`
    if (typeof name !== 'string') return issues.push({ path: at, message: 'must be a string' })
    if (policies.isDeprecated(name) || policies.isDeprecated(name.toLowerCase())) return issues.push({ path: at, message: `"${name}" is deprecated and no longer accepted` })
    if (!policies.isKnown(name)) {
      const lower = name.toLowerCase()
      return issues.push({ path: at, message: policies.isKnown(lower) ? `"${name}" must be written lower-case: "${lower}"` : `"${quoted(name)}" is not a known job token policy` })
    }
    if (names.includes(name)) return issues.push({ path: at, message: `lists "${name}" twice` })
    names.push(name)
  })
  return names
}

export interface EntrySettings {
  readonly defaultPermissions: boolean
  readonly jobTokenPolicies: readonly string[]
}

/**
 * `default_permissions` and `job_token_policies` of a POST or PATCH. `current` is the entry being
 * changed (PATCH), whose values fill what is not given.
 */
export function entrySettings (body: Record<string, unknown>, policies: PolicyIndex, issues: ValidationIssue[], current?: EntrySettings): EntrySettings {
  let defaultPermissions = current?.defaultPermissions ?? true
  if (body.default_permissions !== undefined) {
    const parsed = parseBool(body.default_permissions)
    if (parsed === null) issues.push({ path: 'default_permissions', message: 'must be true or false' })
    else defaultPermissions = parsed
  }
  let jobTokenPolicies = current?.jobTokenPolicies ?? []
  const given = body.job_token_policies
  if (given !== undefined) {
    jobTokenPolicies = policyIssues(given, 'job_token_policies', policies, issues)
    if (defaultPermissions && Array.isArray(given) && given.length > 0) {
      issues.push({ path: 'job_token_policies', message: 'is given while default_permissions is true; policies only apply to entries with default_permissions false' })
    }
  } else if (body.default_permissions !== undefined && defaultPermissions) {
    // Back to default permissions: the old policies no longer apply.
    jobTokenPolicies = []
  }
  return { defaultPermissions, jobTokenPolicies }
}

export function targetIdIssue (raw: unknown, field: string, type: EntryTargetType, projectId: number, issues: ValidationIssue[]): number | null {
  const id = parseId(raw)
  if (raw === undefined) {
    issues.push({ path: field, message: 'is missing' })
    return null
  }
  if (id === null) {
    issues.push({ path: field, message: 'must be a positive integer id' })
    return null
  }
  if (type === 'project' && id === projectId) issues.push({ path: field, message: 'names the project itself; its own jobs need no entry' })
  return id
}

export function countIssue (doc: ProjectGrants, type: EntryTargetType, limit: number, issues: ValidationIssue[]): void {
  const count = doc.entries.filter(e => e.targetType === type).length
  if (count + 1 > limit) {
    issues.push({ path: type === 'project' ? 'allowlist' : 'groups_allowlist', message: `already has ${count} ${type} entries; the limit is ${limit}` })
  }
}

/**
 * PATCH /job_token_permissions: `{"package_registry": {"maven": {"read": true, "write": ...}}}`.
 * Merges into `current`: a given action replaces that action, `null` removes it (back to GitLab's
 * behaviour), a format given as `null` removes the format's rule.
 */
export function mergePackageRules (body: unknown, current: PackageRules | undefined, formats: readonly string[], issues: ValidationIssue[]): PackageRules | null {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    issues.push({ path: '', message: 'must be a JSON object with package_registry' })
    return null
  }
  const start = issues.length
  const record = body as Record<string, unknown>
  for (const key of Object.keys(record)) if (key !== 'package_registry') issues.push({ path: quoted(key), message: 'is not a known field (known: package_registry, job_token_policies_enabled)' })
  const registry = record.package_registry
  if (registry === undefined) {
    issues.push({ path: 'package_registry', message: 'is missing' })
    return null
  }
  if (registry === null || typeof registry !== 'object' || Array.isArray(registry)) {
    issues.push({ path: 'package_registry', message: 'must be an object mapping package formats to rules' })
    return null
  }
  // Without a prototype: `__proto__` is then a key like any other, refused as an unknown format
  // or action, where a plain object would take it for its prototype and drop it unsaid.
  const merged: Record<string, Record<string, unknown>> = Object.create(null) as Record<string, Record<string, unknown>>
  for (const [format, rule] of Object.entries(current ?? {})) merged[format] = Object.assign(Object.create(null) as Record<string, unknown>, rule)
  for (const [format, given] of Object.entries(registry as Record<string, unknown>)) {
    if (given === null) {
      delete merged[format]
      continue
    }
    if (typeof given !== 'object' || Array.isArray(given)) {
      merged[format] = given as Record<string, unknown>
      continue
    }
    const next: Record<string, unknown> = Object.assign(Object.create(null) as Record<string, unknown>, merged[format])
    for (const [action, value] of Object.entries(given as Record<string, unknown>)) {
      if (value === null) delete next[action]
      else next[action] = value
    }
    merged[format] = next
  }
  const valid = validatePackageRules(merged, 'package_registry', issues, formats)
  if (issues.length !== start || valid === null) return null
  // Formats whose every action was removed are GitLab's behaviour again.
  const out: Record<string, PackageFormatRule> = {}
  for (const [format, rule] of Object.entries(valid)) if (Object.keys(rule).length > 0) out[format] = rule
  return out
}
