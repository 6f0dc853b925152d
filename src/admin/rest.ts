// The REST endpoints of the configuration API, under /api/v4 (docs/admin.md):
//   GET|PATCH  /projects/:id/job_token_scope
//   GET        /projects/:id/job_token_scope/usage                 (least-privilege report)
//   GET|POST   /projects/:id/job_token_scope/allowlist            (and groups_allowlist)
//   PATCH|DELETE /projects/:id/job_token_scope/allowlist/:target_project_id (and groups_allowlist/:target_group_id)
//   GET|PATCH  /projects/:id/job_token_permissions
//   GET        /projects/:id/job_token_permissions/audit_events
// Each answer is `{status, body, headers}`; refusals throw AdminError.

import type { ValidationIssue } from '../grants/errors.ts'
import type { AllowlistEntry, EntryTargetType, ProjectGrants } from '../grants/model.ts'
import type { Caller } from './auth.ts'
import { AdminError, type AdminService, type ProjectAccess } from './service.ts'
import { auditView, countIssue, entrySettings, entryView, linkView, mergePackageRules, parseId, permissionsView, targetIdIssue } from './views.ts'
import { parseUsageWindow, usageReport } from '../usage/report.ts'

export interface RestAnswer {
  readonly status: number
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>>
}

export interface RestRequest {
  readonly method: string
  readonly idSegment: string
  /** The part after `/projects/:id`, e.g. `/job_token_scope/allowlist/5`. */
  readonly rest: string
  readonly query: URLSearchParams
  readonly caller: Caller
  readonly requestId: string
  /** Reads the body (JSON or form) merged over the query parameters. */
  readonly params: () => Promise<Record<string, unknown>>
}

/** Whether the path after `/api/v4` is one of the configuration API's. */
export const ADMIN_PATH = /^\/projects\/([^/]+)(\/job_token_scope|\/job_token_permissions)(\/[^?]*)?$/

const MAX_PER_PAGE = 100

function invalid (issues: readonly ValidationIssue[]): never {
  throw new AdminError('ADMIN_VALIDATION_FAILED', undefined, issues)
}

function paginate<T> (items: readonly T[] | null, total: number, query: URLSearchParams): { offset: number, limit: number, headers: (total: number) => Record<string, string>, slice: T[] } {
  const issues: ValidationIssue[] = []
  const page = query.has('page') ? parseId(query.get('page')) : 1
  const perPage = query.has('per_page') ? parseId(query.get('per_page')) : 20
  if (page === null) issues.push({ path: 'page', message: 'must be a positive integer' })
  if (perPage === null) issues.push({ path: 'per_page', message: 'must be a positive integer' })
  if (issues.length > 0) invalid(issues)
  const limit = Math.min(perPage!, MAX_PER_PAGE)
  const offset = (page! - 1) * limit
  const headers = (count: number): Record<string, string> => {
    const pages = Math.max(1, Math.ceil(count / limit))
    return {
      'x-total': String(count),
      'x-total-pages': String(pages),
      'x-page': String(page),
      'x-per-page': String(limit),
      'x-next-page': page! < pages ? String(page! + 1) : '',
      'x-prev-page': page! > 1 ? String(page! - 1) : ''
    }
  }
  return { offset, limit, headers, slice: items === null ? [] : items.slice(offset, offset + limit) }
}

export async function handleRest (service: AdminService, request: RestRequest): Promise<RestAnswer> {
  const { method, rest } = request
  const parts = rest.split('/').filter(Boolean)
  const [area, list, target, ...extra] = parts
  const allowed = (methods: string[]): void => {
    if (!methods.includes(method)) throw new AdminError('ADMIN_METHOD_NOT_ALLOWED', undefined)
  }
  // Shape checks first, so an unknown path answers 404 without asking GitLab.
  if (extra.length > 0) throw new AdminError('ADMIN_NOT_FOUND')
  if (area === 'job_token_permissions') {
    if (list === undefined) allowed(['GET', 'PATCH'])
    else if (list === 'audit_events' && target === undefined) allowed(['GET'])
    else throw new AdminError('ADMIN_NOT_FOUND')
  } else {
    if (list === undefined) allowed(['GET', 'PATCH'])
    else if (list === 'usage' && target === undefined) allowed(['GET'])
    else if (list !== 'allowlist' && list !== 'groups_allowlist') throw new AdminError('ADMIN_NOT_FOUND')
    else if (target === undefined) allowed(['GET', 'POST'])
    else allowed(['PATCH', 'DELETE'])
  }

  const access = await service.access(request.caller, request.idSegment)
  if (area === 'job_token_permissions') {
    return list === undefined ? await permissions(service, access, request) : await auditEvents(service, access, request)
  }
  if (list === undefined) return await scope(service, access, request)
  if (list === 'usage') return await usage(service, access, request)
  const type: EntryTargetType = list === 'allowlist' ? 'project' : 'group'
  if (target === undefined) return method === 'GET' ? await listEntries(service, access, request, type) : await addEntry(service, access, request, type)
  return await changeEntry(service, access, request, type, target)
}

async function permissions (service: AdminService, access: ProjectAccess, request: RestRequest): Promise<RestAnswer> {
  const formats = service.packageFormats()
  if (request.method === 'GET') {
    const { doc } = await service.read(access.projectId, access.projectPath)
    return { status: 200, body: permissionsView(doc, formats) }
  }
  const body = await request.params()
  const doc = await service.update(access, 'update_job_token_permissions', request.requestId, current => {
    const issues: ValidationIssue[] = []
    const rules = mergePackageRules(body, current.packageRules, formats, issues)
    if (rules === null) invalid(issues)
    const { packageRules: _old, ...rest } = current
    const next: ProjectGrants = Object.keys(rules).length === 0 ? rest : { ...rest, packageRules: rules }
    return { doc: next, before: { package_registry: current.packageRules ?? {} }, after: { package_registry: rules } }
  })
  return { status: 200, body: permissionsView(doc, formats) }
}

async function auditEvents (service: AdminService, access: ProjectAccess, request: RestRequest): Promise<RestAnswer> {
  const { offset, limit, headers } = paginate(null, 0, request.query)
  const page = await service.store.readAudit(access.projectId, { offset, limit })
  return { status: 200, body: page.events.map(auditView), headers: headers(page.total) }
}

/** The least-privilege report (src/usage/report.ts): policies each entry's jobs used, and the minimal set. */
async function usage (service: AdminService, access: ProjectAccess, request: RestRequest): Promise<RestAnswer> {
  const window = parseUsageWindow(request.query, Date.now())
  if ('error' in window) invalid([{ path: 'since', message: window.error }])
  return { status: 200, body: await usageReport(service.store, access.projectId, { sinceMs: window.sinceMs, policies: service.policies() }) }
}

async function scope (service: AdminService, access: ProjectAccess, request: RestRequest): Promise<RestAnswer> {
  if (request.method === 'GET') {
    const { doc } = await service.read(access.projectId, access.projectPath)
    // The gate enforces inbound scopes only; GitLab removed the outbound scope in 18.0.
    return { status: 200, body: { inbound_enabled: doc.inboundEnabled || service.settings.enforceInboundScope, outbound_enabled: false } }
  }
  const body = await request.params()
  const enabled = body.enabled === true || body.enabled === 'true' ? true : body.enabled === false || body.enabled === 'false' ? false : null
  if (enabled === null) invalid([{ path: 'enabled', message: body.enabled === undefined ? 'is missing' : 'must be true or false' }])
  await service.update(access, 'update_inbound_scope', request.requestId, current => ({
    doc: { ...current, inboundEnabled: enabled },
    before: { inbound_enabled: current.inboundEnabled },
    after: { inbound_enabled: enabled }
  }))
  return { status: 204 }
}

async function listEntries (service: AdminService, access: ProjectAccess, request: RestRequest, type: EntryTargetType): Promise<RestAnswer> {
  const { doc } = await service.read(access.projectId, access.projectPath)
  const views: Array<Record<string, unknown>> = doc.entries.filter(e => e.targetType === type).map(entryView)
  // GitLab's project allowlist includes the project itself.
  if (type === 'project') views.unshift({ id: access.projectId, path_with_namespace: access.projectPath, default_permissions: true, job_token_policies: [], self: true })
  const { slice, headers } = paginate(views, views.length, request.query)
  return { status: 200, body: slice, headers: headers(views.length) }
}

function actorAddedBy (access: ProjectAccess): AllowlistEntry['addedBy'] {
  return access.actor.kind === 'user' && access.actor.id > 0 ? { id: access.actor.id, ...(access.actor.username === undefined ? {} : { username: access.actor.username }) } : null
}

async function addEntry (service: AdminService, access: ProjectAccess, request: RestRequest, type: EntryTargetType): Promise<RestAnswer> {
  const body = await request.params()
  const field = type === 'project' ? 'target_project_id' : 'target_group_id'
  let added: AllowlistEntry | null = null
  await service.update(access, type === 'project' ? 'add_project_to_allowlist' : 'add_group_to_allowlist', request.requestId, current => {
    const issues: ValidationIssue[] = []
    for (const key of Object.keys(body)) {
      if (![field, 'default_permissions', 'job_token_policies', 'id'].includes(key)) issues.push({ path: key, message: 'is not a known field' })
    }
    const targetId = targetIdIssue(body[field], field, type, access.projectId, issues)
    const settings = entrySettings(body, service.policies(), issues)
    countIssue(current, type, type === 'project' ? service.settings.maxProjectEntries : service.settings.maxGroupEntries, issues)
    if (issues.length > 0) invalid(issues)
    if (current.entries.some(e => e.targetType === type && e.targetId === targetId)) throw new AdminError('ADMIN_ENTRY_EXISTS')
    added = { targetType: type, targetId: targetId!, ...settings, addedBy: actorAddedBy(access), createdAt: new Date().toISOString() }
    return { doc: { ...current, entries: [...current.entries, added] }, before: null, after: entryView(added) }
  })
  return { status: 201, body: linkView(access.projectId, added!) }
}

async function changeEntry (service: AdminService, access: ProjectAccess, request: RestRequest, type: EntryTargetType, target: string): Promise<RestAnswer> {
  const field = type === 'project' ? 'target_project_id' : 'target_group_id'
  const targetId = parseId(target)
  if (targetId === null) invalid([{ path: field, message: 'must be a positive integer id' }])
  const body = request.method === 'PATCH' ? await request.params() : {}
  let changed: AllowlistEntry | null = null
  await service.update(access, `${request.method === 'PATCH' ? 'update' : 'remove'}_${type}_allowlist_entry`, request.requestId, current => {
    const index = current.entries.findIndex(e => e.targetType === type && e.targetId === targetId)
    if (index === -1) throw new AdminError('ADMIN_NOT_FOUND', `404 Not Found - ${type} ${targetId} is not in the job token scope allowlist`)
    const old = current.entries[index]!
    if (request.method === 'DELETE') {
      return { doc: { ...current, entries: current.entries.filter((_, i) => i !== index) }, before: entryView(old), after: null }
    }
    const issues: ValidationIssue[] = []
    for (const key of Object.keys(body)) {
      if (!['default_permissions', 'job_token_policies', 'id', field].includes(key)) issues.push({ path: key, message: 'is not a known field' })
    }
    const settings = entrySettings(body, service.policies(), issues, old)
    if (issues.length > 0) invalid(issues)
    changed = { ...old, ...settings }
    const entries = current.entries.slice()
    entries[index] = changed
    return { doc: { ...current, entries }, before: entryView(old), after: entryView(changed) }
  })
  if (request.method === 'DELETE') return { status: 204 }
  return { status: 200, body: linkView(access.projectId, changed!) }
}
