// The configuration API's core, shared by REST and GraphQL: find the project and prove the
// caller may configure it, then change its grants document with a conditional write (no lost
// updates), local cache invalidation (read-your-writes) and an audit event (log + store). The
// allowlist operations (add, change, remove an entry) live here too, so REST and GraphQL run the
// same validation, Maintainer check and audit.

import type { Logger } from 'pino'
import { errors, GateError, type ErrorCode } from '../errors.ts'
import type { GrantCache } from '../grants/cache.ts'
import { GrantsStoreUnavailableError, GrantsValidationError, GrantsVersionConflictError, type ValidationIssue } from '../grants/errors.ts'
import { isFullPath, isRootNamespaceKey, pathKey, validateProjectGrants, type AllowlistEntry, type EntryTargetType, type InstanceSettings, type ProjectGrants } from '../grants/model.ts'
import type { AuditEvent, GrantStore, NamespaceAuditEvent } from '../grants/store.ts'
import type { PolicyIndex } from '../catalog/policy-index.ts'
import { MAINTAINER_ACCESS, type Caller, type GitlabClient, type LookupCredential } from './auth.ts'
import { countIssue, entrySettings, entryView, targetIdIssue } from './views.ts'
import { quoted } from '../text.ts'

/**
 * A refusal of the configuration API: a GateError with one of the ADMIN_* (or grants, credential)
 * codes of src/errors.ts. Its message is the answer's, the table's unless given.
 */
export class AdminError extends GateError {
  constructor (code: ErrorCode, message: string = errors[code].message, issues: readonly ValidationIssue[] = [], headers: Readonly<Record<string, string>> = {}) {
    super(code, message, { issues, headers })
    this.name = 'AdminError'
  }
}

export type Actor = AuditEvent['actor']

export interface ProjectAccess {
  readonly projectId: number
  readonly projectPath: string
  readonly actor: Actor
  readonly caller: Caller
}

export interface AdminServiceOptions {
  readonly store: GrantStore
  readonly grants: GrantCache
  readonly gitlab: GitlabClient
  readonly logger: Logger
  readonly settings: InstanceSettings
  readonly policies: () => PolicyIndex
  readonly packageFormats: () => readonly string[]
}

/** A root namespace the caller may configure: its settings' key (the lower-cased path). */
export interface NamespaceAccess {
  readonly namespacePath: string
  readonly actor: Actor
}

/** A group or project found by full path, as an allowlist target. */
export interface AllowlistTarget {
  readonly type: EntryTargetType
  readonly id: number
  readonly path: string
}

/** An allowlist change: the entry (before removal, after addition or change) and the new document. */
export interface EntryChange {
  readonly entry: AllowlistEntry
  readonly doc: ProjectGrants
}

export interface AdminService {
  /** Proves `caller` may configure the project named by the URL segment (id or encoded path). */
  access (caller: Caller, idSegment: string): Promise<ProjectAccess>
  /**
   * The project's document, or a fresh empty one for a project never configured (version 0);
   * its `projectPath` is the one given (access()'s, as GitLab names the project now).
   */
  read (projectId: number, projectPath: string): Promise<{ doc: ProjectGrants, version: number }>
  /**
   * Applies `change` to the current document and writes it if it validates; retries on a
   * concurrent write. `change` throws AdminError to refuse; returns the audit's before/after.
   * `write.expectedVersion`: write only over that version (a GrantsVersionConflictError, never a
   * retry, otherwise); `write.imported`: the import's write (PutOptions.imported).
   */
  update (access: ProjectAccess, action: string, requestId: string,
    change: (doc: ProjectGrants) => { doc: ProjectGrants, before: unknown, after: unknown },
    write?: { readonly expectedVersion?: number, readonly imported?: boolean }): Promise<ProjectGrants>
  /**
   * Adds an allowlist entry. `body` speaks the REST fields (`target_project_id` or
   * `target_group_id`, `default_permissions`, `job_token_policies`); validation issues name them.
   * `targetPath` is kept with the entry when the caller named the target by path.
   */
  addEntry (access: ProjectAccess, type: EntryTargetType, body: Readonly<Record<string, unknown>>, requestId: string, targetPath?: string): Promise<EntryChange>
  /** Changes `default_permissions` / `job_token_policies` of an entry (unset fields keep their value). */
  changeEntry (access: ProjectAccess, type: EntryTargetType, targetId: number, body: Readonly<Record<string, unknown>>, requestId: string): Promise<EntryChange>
  /** Removes an entry; 404 ADMIN_NOT_FOUND when it is not there. */
  removeEntry (access: ProjectAccess, type: EntryTargetType, targetId: number, requestId: string): Promise<EntryChange>
  /**
   * Finds a group or project by full path in GitLab, as the caller sees it (its own token; the
   * service token for the operator), trying `types` in order; null when none is visible.
   */
  findTarget (access: ProjectAccess, path: string, types: readonly EntryTargetType[]): Promise<AllowlistTarget | null>
  /**
   * Proves `caller` may configure the root namespace named by the URL segment (a root group's id
   * or URL-encoded path): the operator token only. A subgroup is 400 naming the rule.
   */
  namespaceAccess (caller: Caller, idSegment: string): Promise<NamespaceAccess>
  /**
   * Sets (true, false) or removes (null) the root namespace's `job_token_policies_enabled`:
   * conditional write, retried on a concurrent one, local invalidation, audit. Answers the
   * value before and after.
   */
  updateNamespacePolicies (access: NamespaceAccess, enabled: boolean | null, requestId: string): Promise<{ before: boolean | null, after: boolean | null }>
  readonly settings: InstanceSettings
  readonly policies: () => PolicyIndex
  readonly packageFormats: () => readonly string[]
  readonly store: GrantStore
}

const RETRIES = 10
/** A group's (one segment or more) or project's full path, as GitLab spells them. */
const TARGET_PATH = /^(?!\.\.?(?:\/|$))[A-Za-z0-9_.][A-Za-z0-9_.-]*(\/(?!\.\.?(?:\/|$))[A-Za-z0-9_.][A-Za-z0-9_.-]*)*$/

function validationFailed (issues: readonly ValidationIssue[]): never {
  throw new AdminError('ADMIN_VALIDATION_FAILED', undefined, issues)
}

function actorAddedBy (access: ProjectAccess): AllowlistEntry['addedBy'] {
  return access.actor.kind === 'user' && access.actor.id > 0 ? { id: access.actor.id, ...(access.actor.username === undefined ? {} : { username: access.actor.username }) } : null
}

/** The credential to look things up in GitLab as the caller: its own, or the service token for the operator. */
function lookupHeader (access: ProjectAccess, hasServiceToken: boolean): LookupCredential | null {
  if (access.caller.kind === 'user') return access.caller.header
  if (access.caller.kind === 'operator' && hasServiceToken) return 'service'
  return null
}

export function createAdminService (options: AdminServiceOptions): AdminService {
  const { store, grants, gitlab, logger } = options

  /**
   * The project the operator names, with the path GitLab gives it now (through the service
   * token): a path names the project that holds it in GitLab, never the store's path index,
   * which keeps the path a project had when it was last written. Without a service token only an
   * id can name a project, one the store already holds, whose path cannot be refreshed then.
   */
  async function operatorProject (idSegment: string): Promise<{ id: number, path: string }> {
    let decoded: string
    try { decoded = decodeURIComponent(idSegment) } catch { throw new AdminError('ADMIN_PROJECT_NOT_FOUND') }
    const byId = /^\d+$/.test(decoded)
    if (!byId && !isFullPath(decoded)) throw new AdminError('ADMIN_PROJECT_NOT_FOUND')
    if (!gitlab.hasServiceToken) {
      const id = byId ? Number(decoded) : 0
      const stored = Number.isSafeInteger(id) && id > 0 ? await store.get(id) : null
      if (stored !== null) return { id, path: stored.projectPath }
      throw new AdminError('ADMIN_PROJECT_NOT_FOUND', byId
        ? '404 Project Not Found - the project is not configured in the gate yet, and without GATE_SERVICE_TOKEN the gate cannot look it up'
        : '404 Project Not Found - without GATE_SERVICE_TOKEN the gate cannot tell which project holds a path in GitLab now; name the project by its id')
    }
    const found = await gitlab.project(encodeURIComponent(decoded), 'service', null)
    if (found.kind === 'found') return { id: found.id, path: found.path }
    if (found.kind === 'unavailable') throw new AdminError('ADMIN_UPSTREAM_UNAVAILABLE')
    // An id the service token is not shown still names the stored project, under its stored path.
    const stored = byId && Number.isSafeInteger(Number(decoded)) ? await store.get(Number(decoded)) : null
    if (stored !== null) return { id: stored.projectId, path: stored.projectPath }
    throw new AdminError('ADMIN_PROJECT_NOT_FOUND')
  }

  /**
   * The path a write records: GitLab's for the project now. A user's access() may come from the
   * role cache (30 s), so a write asks again, uncached, by id (the role is proven afresh too);
   * the operator's access() asked GitLab already when it could.
   */
  async function pathNow (access: ProjectAccess): Promise<string> {
    if (access.caller.kind !== 'user') return access.projectPath
    const found = await gitlab.project(String(access.projectId), access.caller.header, null)
    if (found.kind === 'unauthenticated') throw new AdminError('ADMIN_UNAUTHENTICATED')
    if (found.kind === 'not_found') throw new AdminError('ADMIN_PROJECT_NOT_FOUND')
    if (found.kind === 'unavailable') throw new AdminError('ADMIN_UPSTREAM_UNAVAILABLE')
    if (found.accessLevel < MAINTAINER_ACCESS) throw new AdminError('ADMIN_FORBIDDEN')
    return found.path
  }

  /** A group by full path as the header's holder; null when GitLab does not show it. */
  async function findGroup (path: string, header: LookupCredential): Promise<AllowlistTarget | null> {
    const found = await gitlab.group(path, header)
    if (found.kind === 'unavailable') throw new AdminError('ADMIN_UPSTREAM_UNAVAILABLE')
    if (found.kind !== 'found') return null
    // `GET /groups/20` is the group whose id is 20; a GraphQL path of digits names the group whose
    // full path it is (a top-level group named "20"), which that answer is only if it has that path.
    if (/^\d+$/.test(path) && found.path.toLowerCase() !== path.toLowerCase()) return null
    return { type: 'group', id: found.id, path: found.path }
  }

  function notRoot (fullPath: string): never {
    throw new AdminError('ADMIN_VALIDATION_FAILED', '400 Bad request - job_token_policies_enabled is a root namespace setting', [
      { path: 'id', message: `names ${fullPath}, a subgroup: job_token_policies_enabled is set on root namespaces (top-level groups) only, and applies to every project under them` }
    ])
  }

  /**
   * Runs a write that carries its audit event (the store appends the event to its log in the same
   * atomic step as the change), then writes the audit log line. A write that fails with anything
   * but a version conflict may still have been made (Redis ran the script, its answer was lost or
   * late): the event is logged as not confirmed, so the log trail names it either way, and the
   * store's log holds it exactly when the change was made. One the store is sure it wrote nothing
   * of (refused before the write, a save that never replaced the file) is logged as refused, not
   * made: a removal that failed so must not read as one that may have taken effect. `subject`
   * names the project or root namespace in the lines.
   */
  async function audited<T> (subject: Readonly<Record<string, unknown>>, event: AuditEvent | NamespaceAuditEvent, write: () => Promise<T>): Promise<T> {
    const fields = { request_id: event.requestId, ...subject, actor: event.actor, action: event.action, before: event.before, after: event.after }
    let result: T
    try {
      result = await write()
    } catch (err) {
      if (err instanceof GrantsStoreUnavailableError && err.unwritten) {
        // Refused before anything was written (the store says so): not a change that may have been made.
        logger.warn({ audit: true, ...fields, outcome: 'not_made', err: { message: err.message } }, 'job token permissions change refused: the store wrote nothing')
      } else if (!(err instanceof GrantsVersionConflictError) && !(err instanceof GrantsValidationError)) {
        logger.error({ audit: true, ...fields, outcome: 'unknown', err: { message: (err as Error).message } }, 'job token permissions change not confirmed: it may have been made')
      }
      throw err
    }
    logger.info({ audit: true, ...fields }, 'job token permissions changed')
    return result
  }

  return {
    store,
    settings: options.settings,
    async namespaceAccess (caller, idSegment) {
      switch (caller.kind) {
        case 'none': throw new AdminError('ADMIN_UNAUTHENTICATED')
        case 'ambiguous': throw new AdminError('CREDENTIAL_AMBIGUOUS')
        case 'job_token': throw new AdminError('ADMIN_JOB_TOKEN_REFUSED')
        // A group Owner would need a membership lookup the gate's GitLab client does not make:
        // root namespace settings reach every project below, so the operator sets them.
        case 'user': throw new AdminError('ADMIN_FORBIDDEN', '403 Forbidden - a root namespace\'s job_token_policies_enabled is changed with the operator token (GATE_ADMIN_TOKEN)')
        case 'operator': break
      }
      let decoded: string
      try { decoded = decodeURIComponent(idSegment) } catch { throw new AdminError('ADMIN_NOT_FOUND', '404 Group Not Found') }
      if (/^\d+$/.test(decoded)) {
        // An id: GitLab says which group it is (the service token reads any group).
        if (!gitlab.hasServiceToken) throw new AdminError('ADMIN_NOT_FOUND', '404 Group Not Found - without GATE_SERVICE_TOKEN the gate cannot look a group id up; name the root namespace by its path')
        const found = await gitlab.group(decoded, 'service')
        if (found.kind === 'unavailable') throw new AdminError('ADMIN_UPSTREAM_UNAVAILABLE')
        if (found.kind === 'not_found') throw new AdminError('ADMIN_NOT_FOUND', '404 Group Not Found')
        if (found.path.includes('/')) notRoot(found.path)
        decoded = found.path
      }
      if (isFullPath(decoded)) notRoot(decoded)
      // A path is the operator's word: a root namespace may be a user's, which GitLab's groups
      // API does not show, and the settings are keyed by the path the projects carry.
      const key = pathKey(decoded)
      if (!isRootNamespaceKey(key)) throw new AdminError('ADMIN_NOT_FOUND', '404 Group Not Found')
      return { namespacePath: key, actor: { kind: 'operator' } }
    },
    async updateNamespacePolicies (access, enabled, requestId) {
      const key = access.namespacePath
      for (let attempt = 0; ; attempt++) {
        const stored = await store.getNamespace(key)
        const before = stored?.jobTokenPoliciesEnabled ?? null
        const event: NamespaceAuditEvent = {
          namespacePath: key, actor: access.actor, action: 'update_namespace_job_token_policies',
          before: { job_token_policies_enabled: before }, after: { job_token_policies_enabled: enabled }, time: new Date().toISOString(), requestId
        }
        try {
          await audited({ namespace: key }, event, async () => {
            if (enabled !== null) await store.putNamespace({ namespacePath: key, jobTokenPoliciesEnabled: enabled }, { expectedVersion: stored?.version ?? 0, audit: event })
            else if (stored !== null) await store.deleteNamespace(key, { expectedVersion: stored.version, audit: event })
            // Removing settings that are not there writes nothing: the request is recorded alone.
            else await store.appendNamespaceAudit(event)
          })
        } catch (err) {
          if (err instanceof GrantsVersionConflictError && attempt < RETRIES) continue
          throw err
        }
        // Read-your-writes on this replica; the others drop it on the store's invalidation.
        grants.invalidateNamespace(key)
        return { before, after: enabled }
      }
    },
    policies: options.policies,
    packageFormats: options.packageFormats,
    async access (caller, idSegment) {
      switch (caller.kind) {
        case 'none': throw new AdminError('ADMIN_UNAUTHENTICATED')
        case 'ambiguous': throw new AdminError('CREDENTIAL_AMBIGUOUS')
        case 'job_token': throw new AdminError('ADMIN_JOB_TOKEN_REFUSED')
        case 'operator': {
          const { id, path } = await operatorProject(idSegment)
          return { projectId: id, projectPath: path, actor: { kind: 'operator' }, caller }
        }
        case 'user': {
          const found = await gitlab.project(idSegment, caller.header, caller.hash, caller.client)
          if (found.kind === 'unauthenticated') throw new AdminError('ADMIN_UNAUTHENTICATED')
          if (found.kind === 'not_found') throw new AdminError('ADMIN_PROJECT_NOT_FOUND')
          if (found.kind === 'unavailable') throw new AdminError('ADMIN_UPSTREAM_UNAVAILABLE')
          if (found.accessLevel < MAINTAINER_ACCESS) throw new AdminError('ADMIN_FORBIDDEN')
          const user = await gitlab.user(caller.header, caller.hash, caller.client)
          const actor: Actor = user === null ? { kind: 'user', id: 0 } : { kind: 'user', ...user }
          return { projectId: found.id, projectPath: found.path, actor, caller }
        }
      }
    },
    async addEntry (access, type, body, requestId, targetPath) {
      const field = type === 'project' ? 'target_project_id' : 'target_group_id'
      let added: AllowlistEntry | null = null
      const doc = await this.update(access, type === 'project' ? 'add_project_to_allowlist' : 'add_group_to_allowlist', requestId, current => {
        const issues: ValidationIssue[] = []
        for (const key of Object.keys(body)) {
          if (![field, 'default_permissions', 'job_token_policies', 'id'].includes(key)) issues.push({ path: quoted(key), message: 'is not a known field' })
        }
        const targetId = targetIdIssue(body[field], field, type, access.projectId, issues)
        const settings = entrySettings(body, options.policies(), issues)
        countIssue(current, type, type === 'project' ? options.settings.maxProjectEntries : options.settings.maxGroupEntries, issues)
        if (issues.length > 0) validationFailed(issues)
        if (current.entries.some(e => e.targetType === type && e.targetId === targetId)) throw new AdminError('ADMIN_ENTRY_EXISTS')
        added = {
          targetType: type,
          targetId: targetId!,
          ...(targetPath === undefined ? {} : { targetPath }),
          ...settings,
          addedBy: actorAddedBy(access),
          createdAt: new Date().toISOString()
        }
        return { doc: { ...current, entries: [...current.entries, added] }, before: null, after: entryView(added) }
      })
      return { entry: added!, doc }
    },
    async changeEntry (access, type, targetId, body, requestId) {
      const field = type === 'project' ? 'target_project_id' : 'target_group_id'
      let changed: AllowlistEntry | null = null
      const doc = await this.update(access, `update_${type}_allowlist_entry`, requestId, current => {
        const index = current.entries.findIndex(e => e.targetType === type && e.targetId === targetId)
        if (index === -1) throw new AdminError('ADMIN_NOT_FOUND', `404 Not Found - ${type} ${targetId} is not in the job token scope allowlist`)
        const old = current.entries[index]!
        const issues: ValidationIssue[] = []
        for (const key of Object.keys(body)) {
          if (!['default_permissions', 'job_token_policies', 'id', field].includes(key)) issues.push({ path: quoted(key), message: 'is not a known field' })
        }
        const settings = entrySettings(body, options.policies(), issues, old)
        if (issues.length > 0) validationFailed(issues)
        changed = { ...old, ...settings }
        const entries = current.entries.slice()
        entries[index] = changed
        return { doc: { ...current, entries }, before: entryView(old), after: entryView(changed) }
      })
      return { entry: changed!, doc }
    },
    async removeEntry (access, type, targetId, requestId) {
      let removed: AllowlistEntry | null = null
      const doc = await this.update(access, `remove_${type}_allowlist_entry`, requestId, current => {
        const index = current.entries.findIndex(e => e.targetType === type && e.targetId === targetId)
        if (index === -1) throw new AdminError('ADMIN_NOT_FOUND', `404 Not Found - ${type} ${targetId} is not in the job token scope allowlist`)
        removed = current.entries[index]!
        return { doc: { ...current, entries: current.entries.filter((_, i) => i !== index) }, before: entryView(removed), after: null }
      })
      return { entry: removed!, doc }
    },
    async findTarget (access, path, types) {
      if (!TARGET_PATH.test(path) || path.length > 2048) return null
      const header = lookupHeader(access, gitlab.hasServiceToken)
      for (const type of types) {
        if (type === 'project') {
          if (!isFullPath(path)) continue
          // The operator without a service token: nothing tells which project holds the path now
          // (the store's path index is the path as last written, not GitLab's), so none is found.
          if (header === null) continue
          // Uncached: a path may have changed hands since a cached answer (targets are looked up for writes only).
          const found = await gitlab.project(encodeURIComponent(path), header, null)
          if (found.kind === 'unavailable') throw new AdminError('ADMIN_UPSTREAM_UNAVAILABLE')
          // GitLab's mutations find a target by the path it holds now, never a moved project's old one.
          if (found.kind === 'found' && found.path.toLowerCase() === path.toLowerCase()) return { type, id: found.id, path: found.path }
        } else if (header !== null) {
          const group = await findGroup(path, header)
          if (group !== null) return group
        }
      }
      return null
    },
    async read (projectId, projectPath) {
      const stored = await store.get(projectId)
      if (stored === null) return { doc: { projectId, projectPath, inboundEnabled: true, entries: [] }, version: 0 }
      // The path is the caller's, as GitLab gave it now (access()): GitLab renames and transfers
      // projects without telling the gate, so the stored one may be old, and the next write records this one.
      const { version, importedVersion: _imported, ...doc } = stored
      return { doc: { ...doc, projectPath }, version }
    },
    async update (access, action, requestId, change, write = {}) {
      // Every change is audited with its author: a user GitLab does not name (id 0) writes nothing,
      // where the event and the entry's added_by once named nobody.
      if (access.actor.kind === 'user' && !(access.actor.id > 0)) throw new AdminError('ADMIN_ACTOR_UNKNOWN')
      const projectPath = await pathNow(access)
      for (let attempt = 0; ; attempt++) {
        const { doc: current, version } = await this.read(access.projectId, projectPath)
        if (write.expectedVersion !== undefined && version !== write.expectedVersion) throw new GrantsVersionConflictError(access.projectId, write.expectedVersion, version)
        const { doc: next, before, after } = change(current)
        let valid: ProjectGrants
        try {
          // What the change carries over from the stored document keeps what it had: a policy or
          // format the catalog dropped since must not refuse a change to anything else.
          const carriedOver = new Set<unknown>([...current.entries, ...(current.packageRules === undefined ? [] : [current.packageRules])])
          valid = validateProjectGrants(next, { settings: options.settings, policies: options.policies(), packageFormats: options.packageFormats(), carriedOver })
        } catch (err) {
          if (err instanceof GrantsValidationError) throw new AdminError('ADMIN_VALIDATION_FAILED', errors.ADMIN_VALIDATION_FAILED.message, err.issues)
          throw err
        }
        const event: AuditEvent = { projectId: access.projectId, actor: access.actor, action, before, after, time: new Date().toISOString(), requestId }
        try {
          await audited({ project_id: access.projectId }, event, async () => await store.put(valid, { expectedVersion: version, audit: event, ...(write.imported === true ? { imported: true } : {}) }))
        } catch (err) {
          if (err instanceof GrantsVersionConflictError && attempt < RETRIES && write.expectedVersion === undefined) continue
          throw err
        }
        // Read-your-writes on this replica; the others drop it on the store's invalidation.
        grants.invalidate(access.projectId)
        return valid
      }
    }
  }
}
