// What the gate knows about one accessed project's inbound job token scope, the instance-wide
// settings around it, and the validation every write goes through. Field meanings follow
// GitLab's `Ci::JobToken::ProjectScopeLink` / `GroupScopeLink` (docs/gitlab-rules.md, "The decision"
// and "Configuring scopes in GitLab").

import { GrantsValidationError, type ValidationIssue } from './errors.ts'
import { deepFreeze, isRecord } from '../plain-data.ts'
import type { PolicyIndex } from '../catalog/policy-index.ts'
import { validatePackageRules, type PackageRules } from './package-rules-model.ts'

export type EntryTargetType = 'project' | 'group'

export interface AddedBy {
  readonly id: number
  readonly username?: string
}

/** One inbound allowlist entry: "jobs of <target> may use their token on this project". */
export interface AllowlistEntry {
  readonly targetType: EntryTargetType
  /** The project id, or the group id, whose jobs are allowed. */
  readonly targetId: number
  /** Informational full path of the target; decisions only use `targetId`. */
  readonly targetPath?: string
  /** GitLab's default for a new entry: true (the job gets its user's role, no policy check). */
  readonly defaultPermissions: boolean
  /** Lower-case policy names; only read when `defaultPermissions` is false. */
  readonly jobTokenPolicies: readonly string[]
  readonly addedBy: AddedBy | null
  /** ISO 8601 time the entry was created. */
  readonly createdAt: string
}

// Per package format read/write/delete rules: src/grants/package-rules-model.ts.
export type { PackageRules } from './package-rules-model.ts'

/** Everything the gate stores about one accessed project. */
export interface ProjectGrants {
  readonly projectId: number
  /** Full path (`group/sub/project`); looked up case-insensitively, as GitLab does. */
  readonly projectPath: string
  /** GitLab's `inbound_job_token_scope_enabled` for this project. */
  readonly inboundEnabled: boolean
  readonly entries: readonly AllowlistEntry[]
  readonly packageRules?: PackageRules
  /**
   * GitLab's `job_token_policies_enabled` (17.11 to 18.4) for this project alone: false makes its
   * fine-grained entries act as default permissions. Wins over its root namespace's
   * NamespaceSettings, which win over the instance's `fineGrainedPolicies`. Absent: not set here.
   */
  readonly jobTokenPoliciesEnabled?: boolean
}

/** A document as a store returns it: with the per-project version its last write produced. */
export interface StoredGrants extends ProjectGrants {
  readonly version: number
  /**
   * The version `import-allowlists` last wrote the document at (PutOptions.imported), absent when
   * the import never wrote it or the store has no record of it (a document stored before the gate
   * kept one). Equal to `version`: the document is GitLab's as last imported; anything else means
   * it was written since by the configuration API, which a later import must not undo.
   */
  readonly importedVersion?: number
}

/**
 * GitLab's `job_token_policies_enabled` of one root namespace (namespace_setting.rb, 17.11 to
 * 18.4), for every project under it whose own document does not set `jobTokenPoliciesEnabled`.
 * Keyed by the root namespace's path, lower-cased: the first segment of an accessed project's
 * `projectPath`, so the request path needs no GitLab call to find it.
 */
export interface NamespaceSettings {
  /** The root namespace's path, lower-cased (`acme`): one segment, never a subgroup. */
  readonly namespacePath: string
  readonly jobTokenPoliciesEnabled: boolean
}

export interface StoredNamespaceSettings extends NamespaceSettings {
  readonly version: number
}

/**
 * What to do for an accessed project the store knows nothing about:
 * - `empty_allowlist` (default): as GitLab would with enforcement on and no entries — only
 *   self access passes;
 * - `allow`: the gate does not check the scope of unknown projects and leaves it to GitLab
 *   (for a gradual roll-out where not every project is configured in the gate yet).
 */
export type UnknownProjectMode = 'empty_allowlist' | 'allow'

export interface InstanceSettings {
  /** GitLab's `enforce_ci_inbound_job_token_scope_enabled` (true by default since 18.0). */
  readonly enforceInboundScope: boolean
  readonly maxProjectEntries: number
  readonly maxGroupEntries: number
  readonly unknownProject: UnknownProjectMode
  /**
   * Whether fine-grained policies are enforced (`enforce`, GitLab 18.5 on; absent means so) or
   * act as default permissions (`off`: older GitLab, feature flag `add_policies_to_ci_job_token`
   * off or `job_token_policies_enabled` false). A root namespace's NamespaceSettings override it,
   * and a project's `jobTokenPoliciesEnabled` overrides both.
   */
  readonly fineGrainedPolicies?: FineGrainedPolicies
}

export type FineGrainedPolicies = 'enforce' | 'off'

export const DEFAULT_INSTANCE_SETTINGS: InstanceSettings = Object.freeze({
  enforceInboundScope: true,
  maxProjectEntries: 200,
  maxGroupEntries: 200,
  unknownProject: 'empty_allowlist'
})

/** Fills defaults, checks values and freezes; throws naming the bad key. */
export function createInstanceSettings (options: Partial<InstanceSettings> = {}): InstanceSettings {
  const settings = { ...DEFAULT_INSTANCE_SETTINGS, ...options }
  if (typeof settings.enforceInboundScope !== 'boolean') throw new TypeError('enforceInboundScope must be a boolean')
  for (const key of ['maxProjectEntries', 'maxGroupEntries'] as const) {
    if (!Number.isSafeInteger(settings[key]) || settings[key] < 0) throw new TypeError(`${key} must be a non-negative integer`)
  }
  if (settings.unknownProject !== 'empty_allowlist' && settings.unknownProject !== 'allow') {
    throw new TypeError(`unknownProject must be "empty_allowlist" or "allow", not ${JSON.stringify(settings.unknownProject)}`)
  }
  if (settings.fineGrainedPolicies !== undefined && settings.fineGrainedPolicies !== 'enforce' && settings.fineGrainedPolicies !== 'off') {
    throw new TypeError(`fineGrainedPolicies must be "enforce" or "off", not ${JSON.stringify(settings.fineGrainedPolicies)}`)
  }
  return Object.freeze(settings)
}

/** The key a full path is indexed under: GitLab matches paths case-insensitively. */
export function pathKey (path: string): string {
  return path.toLowerCase()
}

// GitLab namespace and project paths: letters, digits, '_', '-', '.', starting with any but '-'
// (lib/gitlab/path_regex.rb: `acme/.dotfiles` is a project), never a dot segment; segments
// joined by '/'. A path refused here resolves to no project, so it must not refuse one GitLab
// routes to a project. Braces never occur, which keeps them safe inside Redis Cluster hash tags.
const FULL_PATH = /^(?!\.\.?(?:\/|$))[A-Za-z0-9_.][A-Za-z0-9_.-]*(\/(?!\.\.?(?:\/|$))[A-Za-z0-9_.][A-Za-z0-9_.-]*)+$/
const MAX_PATH_LENGTH = 2048

/** Whether `path` can be a GitLab full project path, as stored (a path configured or indexed). */
export function isFullPath (path: string): boolean {
  return path.length <= MAX_PATH_LENGTH && FULL_PATH.test(path)
}

/**
 * Whether GitLab may route a `/projects/:id` segment (decoded) to a project by full path:
 * `find_project` looks up any `:id` holding a '/' that way, and `Routable.find_by_full_path`
 * compares LOWER() of both sides in PostgreSQL, which under any collation but plain "C" folds a
 * few characters outside ASCII onto ASCII letters (U+212A KELVIN SIGN is "k"; with glibc, U+0130
 * is "i"). So a segment that is no full path as written may still name one: it must be asked of
 * GitLab, never taken for "no project". A string without '/' GitLab finds nothing for.
 */
export function mayNameProject (path: string): boolean {
  return path.length <= MAX_PATH_LENGTH && path.includes('/')
}

/**
 * Whether GitLab may route `path` to a project that the gate does not look up: a path holding a
 * '/' over 2048 characters. GitLab's full paths go further (20 nested groups and a project, each
 * path up to 255 characters), so such a path is no "no project": it is refused, never passed as
 * an unknown project (GATE_UNKNOWN_PROJECT=allow) or left unchecked by the users' package rules.
 */
export function namesProjectTooLong (path: string): boolean {
  return path.length > MAX_PATH_LENGTH && path.includes('/')
}

/**
 * The path-index key of the stored path GitLab may route a `/projects/:id` segment (decoded) to,
 * or null when no stored path can be one. `Routable.find_by_full_path` compares LOWER() of both
 * sides, and LOWER() folds onto an ASCII letter, besides A-Z, U+212A KELVIN SIGN ("k": glibc and
 * ICU) and U+0130 ("i": glibc; ICU's "i" + U+0307 matches nothing, but a Turkish one's "i" does);
 * under the "C" collation neither. Which one GitLab's database has cannot be seen from here, so
 * this folds both: the key is for the store's path index, a hint that only ever adds a check,
 * where a stored project GitLab may serve under the segment must be found. JavaScript's
 * toLowerCase() would do for the Kelvin sign but makes U+0130 "i" + U+0307, which no stored path holds.
 */
export function foldedPathKey (path: string): string | null {
  if (path.length > MAX_PATH_LENGTH) return null
  const folded = path.replace(/[A-Z\u212A\u0130]/g, c => c === '\u212A' ? 'k' : c === '\u0130' ? 'i' : c.toLowerCase())
  return FULL_PATH.test(folded) ? folded : null
}

const ROOT_PATH = /^(?!\.\.?$)[a-z0-9_.][a-z0-9_.-]*$/
const MAX_ROOT_PATH_LENGTH = 255

/** Whether `path` is a root namespace key: one lower-case path segment. */
export function isRootNamespaceKey (path: string): boolean {
  return path.length <= MAX_ROOT_PATH_LENGTH && ROOT_PATH.test(path)
}

/** The root namespace key of a full project path (`Acme/sub/app` → `acme`). */
export function rootNamespaceOf (projectPath: string): string {
  const slash = projectPath.indexOf('/')
  return pathKey(slash === -1 ? projectPath : projectPath.slice(0, slash))
}

/** Checks a NamespaceSettings document and returns a frozen copy; throws naming every bad field. */
export function validateNamespaceSettings (doc: unknown): NamespaceSettings {
  if (!isRecord(doc)) throw new GrantsValidationError([{ path: '', message: 'must be an object' }])
  const issues: ValidationIssue[] = []
  for (const key of Object.keys(doc)) if (key !== 'namespacePath' && key !== 'jobTokenPoliciesEnabled') issues.push({ path: key, message: 'is not a known field' })
  if (typeof doc.namespacePath !== 'string' || !isRootNamespaceKey(doc.namespacePath)) {
    issues.push({ path: 'namespacePath', message: 'must be a root namespace path, one lower-case segment such as "acme"' })
  }
  if (typeof doc.jobTokenPoliciesEnabled !== 'boolean') issues.push({ path: 'jobTokenPoliciesEnabled', message: 'must be a boolean' })
  if (issues.length > 0) throw new GrantsValidationError(issues)
  return Object.freeze({ namespacePath: doc.namespacePath as string, jobTokenPoliciesEnabled: doc.jobTokenPoliciesEnabled as boolean })
}

const GRANT_KEYS = new Set(['projectId', 'projectPath', 'inboundEnabled', 'entries', 'packageRules', 'jobTokenPoliciesEnabled'])
const ENTRY_KEYS = new Set(['targetType', 'targetId', 'targetPath', 'defaultPermissions', 'jobTokenPolicies', 'addedBy', 'createdAt'])

function isId (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0
}

export interface ValidateOptions {
  readonly settings: InstanceSettings
  /** When given, policy names are checked against the catalog (every write must pass one). */
  readonly policies?: PolicyIndex
  /** When given, package rule formats are checked against the catalog's formats. */
  readonly packageFormats?: readonly string[]
  /**
   * Parts of the document a write carries over unchanged from the stored one (its entries, its
   * package rules, by identity): checked for their shape only, as documents read back from a store
   * are. The catalog may have dropped a policy or format since they were written, and a change to
   * anything else (removing another entry) must not be refused for it.
   */
  readonly carriedOver?: ReadonlySet<unknown>
}

/**
 * Checks a ProjectGrants document and returns a normalized, frozen copy. Every problem is
 * collected, so a configuration tool can show them all at once. Stores accept what this
 * returns; documents read back from a store go through it without `policies`, so a policy
 * later removed from the catalog does not make a stored project unreadable (it just never
 * matches an endpoint).
 */
export function validateProjectGrants (doc: unknown, options: ValidateOptions): ProjectGrants {
  const issues: ValidationIssue[] = []
  const fail = (path: string, message: string): void => { issues.push({ path, message }) }
  if (!isRecord(doc)) throw new GrantsValidationError([{ path: '', message: 'must be an object' }])

  for (const key of Object.keys(doc)) if (!GRANT_KEYS.has(key)) fail(key, 'is not a known field')
  if (!isId(doc.projectId)) fail('projectId', 'must be a positive integer')
  if (typeof doc.projectPath !== 'string' || !isFullPath(doc.projectPath)) {
    fail('projectPath', 'must be a full project path such as "group/project"')
  }
  if (typeof doc.inboundEnabled !== 'boolean') fail('inboundEnabled', 'must be a boolean')
  if (doc.jobTokenPoliciesEnabled !== undefined && typeof doc.jobTokenPoliciesEnabled !== 'boolean') fail('jobTokenPoliciesEnabled', 'must be a boolean when present')
  const carried = options.carriedOver
  const packageRules = doc.packageRules === undefined ? undefined : validatePackageRules(doc.packageRules, 'packageRules', issues, carried?.has(doc.packageRules) === true ? undefined : options.packageFormats)

  const entries: AllowlistEntry[] = []
  if (!Array.isArray(doc.entries)) {
    fail('entries', 'must be an array')
  } else {
    const seen = new Set<string>()
    let projects = 0
    let groups = 0
    doc.entries.forEach((raw: unknown, i: number) => {
      const at = `entries[${i}]`
      const entry = validateEntry(raw, at, issues, carried?.has(raw) === true ? undefined : options.policies)
      if (entry === null) return
      const key = `${entry.targetType}:${entry.targetId}`
      if (seen.has(key)) fail(at, `names ${entry.targetType} ${entry.targetId} again; each target has one entry`)
      seen.add(key)
      if (entry.targetType === 'project') {
        projects++
        if (entry.targetId === doc.projectId) fail(at, 'names the project itself; self access needs no entry')
      } else {
        groups++
      }
      entries.push(entry)
    })
    if (projects > options.settings.maxProjectEntries) fail('entries', `has ${projects} project entries; the limit is ${options.settings.maxProjectEntries}`)
    if (groups > options.settings.maxGroupEntries) fail('entries', `has ${groups} group entries; the limit is ${options.settings.maxGroupEntries}`)
  }

  if (issues.length > 0) throw new GrantsValidationError(issues)
  const grants: ProjectGrants = {
    projectId: doc.projectId as number,
    projectPath: doc.projectPath as string,
    inboundEnabled: doc.inboundEnabled as boolean,
    entries: Object.freeze(entries),
    ...(packageRules !== undefined && packageRules !== null ? { packageRules: deepFreeze(packageRules as PackageRules) } : {}),
    ...(typeof doc.jobTokenPoliciesEnabled === 'boolean' ? { jobTokenPoliciesEnabled: doc.jobTokenPoliciesEnabled } : {})
  }
  return Object.freeze(grants)
}

// Documents read back from a store were validated on write; limits and policy names may have
// changed since, so only the shape is checked again.
const STORED_SHAPE: ValidateOptions = {
  settings: { ...DEFAULT_INSTANCE_SETTINGS, maxProjectEntries: Number.MAX_SAFE_INTEGER, maxGroupEntries: Number.MAX_SAFE_INTEGER }
}

/** Shape check for a document read from (or handed to) a store. */
export function checkStoredGrants (doc: unknown): ProjectGrants {
  return validateProjectGrants(doc, STORED_SHAPE)
}

function validateEntry (raw: unknown, at: string, issues: ValidationIssue[], policies: PolicyIndex | undefined): AllowlistEntry | null {
  const fail = (path: string, message: string): void => { issues.push({ path, message }) }
  if (!isRecord(raw)) {
    fail(at, 'must be an object')
    return null
  }
  const before = issues.length
  for (const key of Object.keys(raw)) if (!ENTRY_KEYS.has(key)) fail(`${at}.${key}`, 'is not a known field')
  if (raw.targetType !== 'project' && raw.targetType !== 'group') fail(`${at}.targetType`, 'must be "project" or "group"')
  if (!isId(raw.targetId)) fail(`${at}.targetId`, 'must be a positive integer')
  if (raw.targetPath !== undefined && (typeof raw.targetPath !== 'string' || raw.targetPath.length === 0 || raw.targetPath.length > MAX_PATH_LENGTH)) {
    fail(`${at}.targetPath`, 'must be a non-empty string when present')
  }
  if (typeof raw.defaultPermissions !== 'boolean') fail(`${at}.defaultPermissions`, 'must be a boolean')
  const names: string[] = []
  if (!Array.isArray(raw.jobTokenPolicies)) {
    fail(`${at}.jobTokenPolicies`, 'must be an array of policy names')
  } else {
    raw.jobTokenPolicies.forEach((name: unknown, j: number) => {
      const where = `${at}.jobTokenPolicies[${j}]`
      if (typeof name !== 'string') return fail(where, 'must be a string')
      if (names.includes(name)) return fail(where, `lists "${name}" twice`)
      names.push(name)
      if (policies === undefined) return
      if (policies.isDeprecated(name)) return fail(where, `"${name}" is deprecated and no longer accepted`)
      if (!policies.isKnown(name)) {
        const lower = name.toLowerCase()
        return fail(where, policies.isKnown(lower) ? `"${name}" must be written lower-case: "${lower}"` : `"${name}" is not a known job token policy`)
      }
    })
  }
  let addedBy: AddedBy | null = null
  if (raw.addedBy !== undefined && raw.addedBy !== null) {
    if (!isRecord(raw.addedBy) || !isId(raw.addedBy.id) || (raw.addedBy.username !== undefined && typeof raw.addedBy.username !== 'string')) {
      fail(`${at}.addedBy`, 'must be null or { id: positive integer, username?: string }')
    } else {
      addedBy = Object.freeze(raw.addedBy.username === undefined ? { id: raw.addedBy.id } : { id: raw.addedBy.id, username: raw.addedBy.username })
    }
  }
  if (typeof raw.createdAt !== 'string' || Number.isNaN(Date.parse(raw.createdAt))) fail(`${at}.createdAt`, 'must be an ISO 8601 date-time')
  if (issues.length !== before) return null
  return Object.freeze({
    targetType: raw.targetType as EntryTargetType,
    targetId: raw.targetId as number,
    ...(typeof raw.targetPath === 'string' ? { targetPath: raw.targetPath } : {}),
    defaultPermissions: raw.defaultPermissions as boolean,
    jobTokenPolicies: Object.freeze(names),
    addedBy,
    createdAt: raw.createdAt as string
  })
}
