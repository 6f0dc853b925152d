// The configuration API's core, shared by REST and GraphQL: find the project and prove the
// caller may configure it, then change its grants document with a conditional write (no lost
// updates), local cache invalidation (read-your-writes) and an audit event (log + store).

import type { Logger } from 'pino'
import { errors } from '../errors.ts'
import type { GrantCache } from '../grants/cache.ts'
import { GrantsValidationError, GrantsVersionConflictError, type ValidationIssue } from '../grants/errors.ts'
import { isFullPath, validateProjectGrants, type InstanceSettings, type ProjectGrants } from '../grants/model.ts'
import type { AuditEvent, GrantStore } from '../grants/store.ts'
import type { PolicyIndex } from '../policy/policy-index.ts'
import { MAINTAINER_ACCESS, type Caller, type GitlabClient } from './auth.ts'

/** A refusal of the configuration API: one of the ADMIN_* codes of src/errors.ts. */
export class AdminError extends Error {
  readonly code: keyof typeof errors
  readonly status: number
  readonly issues: readonly ValidationIssue[]
  /** Extra response headers (`Allow` of a 405). */
  readonly headers: Readonly<Record<string, string>>

  constructor (code: keyof typeof errors, message: string = errors[code].message, issues: readonly ValidationIssue[] = [], headers: Readonly<Record<string, string>> = {}) {
    super(message)
    this.name = 'AdminError'
    this.code = code
    this.status = errors[code].status
    this.issues = issues
    this.headers = headers
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
  /** Used for the operator token on a project the store does not know yet (id ↔ path). */
  readonly serviceToken?: string
}

export interface AdminService {
  /** Proves `caller` may configure the project named by the URL segment (id or encoded path). */
  access (caller: Caller, idSegment: string): Promise<ProjectAccess>
  /** The project's document, or a fresh empty one for a project never configured (version 0). */
  read (projectId: number, projectPath: string): Promise<{ doc: ProjectGrants, version: number }>
  /**
   * Applies `change` to the current document and writes it if it validates; retries on a
   * concurrent write. `change` throws AdminError to refuse; returns the audit's before/after.
   */
  update (access: ProjectAccess, action: string, requestId: string,
    change: (doc: ProjectGrants) => { doc: ProjectGrants, before: unknown, after: unknown }): Promise<ProjectGrants>
  readonly settings: InstanceSettings
  readonly policies: () => PolicyIndex
  readonly packageFormats: () => readonly string[]
  readonly store: GrantStore
}

const RETRIES = 10

export function createAdminService (options: AdminServiceOptions): AdminService {
  const { store, grants, gitlab, logger } = options

  async function operatorProject (idSegment: string): Promise<{ id: number, path: string }> {
    let decoded: string
    try { decoded = decodeURIComponent(idSegment) } catch { throw new AdminError('ADMIN_PROJECT_NOT_FOUND') }
    if (/^\d+$/.test(decoded)) {
      const id = Number(decoded)
      const stored = Number.isSafeInteger(id) && id > 0 ? await store.get(id) : null
      if (stored !== null) return { id, path: stored.projectPath }
    } else if (isFullPath(decoded)) {
      const id = await store.resolvePath(decoded)
      const stored = id === null ? null : await store.get(id)
      if (stored !== null) return { id: stored.projectId, path: stored.projectPath }
    } else {
      throw new AdminError('ADMIN_PROJECT_NOT_FOUND')
    }
    // Not configured yet: GitLab knows its id and path (through the service token).
    if (options.serviceToken === undefined) throw new AdminError('ADMIN_PROJECT_NOT_FOUND', '404 Project Not Found - the project is not configured in the gate yet, and without GATE_SERVICE_TOKEN the gate cannot look it up')
    const found = await gitlab.project(encodeURIComponent(decoded), { 'private-token': options.serviceToken }, null)
    if (found.kind === 'found') return { id: found.id, path: found.path }
    if (found.kind === 'unavailable') throw new AdminError('ADMIN_UPSTREAM_UNAVAILABLE')
    throw new AdminError('ADMIN_PROJECT_NOT_FOUND')
  }

  return {
    store,
    settings: options.settings,
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
          const found = await gitlab.project(idSegment, caller.header, caller.hash)
          if (found.kind === 'unauthenticated') throw new AdminError('ADMIN_UNAUTHENTICATED')
          if (found.kind === 'not_found') throw new AdminError('ADMIN_PROJECT_NOT_FOUND')
          if (found.kind === 'unavailable') throw new AdminError('ADMIN_UPSTREAM_UNAVAILABLE')
          if (found.accessLevel < MAINTAINER_ACCESS) throw new AdminError('ADMIN_FORBIDDEN')
          const user = await gitlab.user(caller.header, caller.hash)
          const actor: Actor = user === null ? { kind: 'user', id: 0 } : { kind: 'user', ...user }
          return { projectId: found.id, projectPath: found.path, actor, caller }
        }
      }
    },
    async read (projectId, projectPath) {
      const stored = await store.get(projectId)
      if (stored === null) return { doc: { projectId, projectPath, inboundEnabled: true, entries: [] }, version: 0 }
      const { version, ...doc } = stored
      return { doc, version }
    },
    async update (access, action, requestId, change) {
      for (let attempt = 0; ; attempt++) {
        const { doc: current, version } = await this.read(access.projectId, access.projectPath)
        const { doc: next, before, after } = change(current)
        let valid: ProjectGrants
        try {
          valid = validateProjectGrants(next, { settings: options.settings, policies: options.policies(), packageFormats: options.packageFormats() })
        } catch (err) {
          if (err instanceof GrantsValidationError) throw new AdminError('ADMIN_VALIDATION_FAILED', errors.ADMIN_VALIDATION_FAILED.message, err.issues)
          throw err
        }
        try {
          await store.put(valid, { expectedVersion: version })
        } catch (err) {
          if (err instanceof GrantsVersionConflictError && attempt < RETRIES) continue
          throw err
        }
        // Read-your-writes on this replica; the others drop it on the store's invalidation.
        grants.invalidate(access.projectId)
        const event: AuditEvent = { projectId: access.projectId, actor: access.actor, action, before, after, time: new Date().toISOString(), requestId }
        logger.info({ audit: true, request_id: requestId, project_id: access.projectId, actor: access.actor, action, before, after }, 'job token permissions changed')
        try {
          await store.appendAudit(event)
        } catch (err) {
          // The change is made; a lost audit record must at least be loud.
          logger.error({ request_id: requestId, project_id: access.projectId, err: { message: (err as Error).message } }, 'audit event not stored')
        }
        return valid
      }
    }
  }
}
