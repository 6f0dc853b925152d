// The REST endpoints of the configuration API, under /api/v4 (docs/admin.md):
//   GET|PATCH  /projects/:id/job_token_scope
//   GET        /projects/:id/job_token_scope/usage                 (least-privilege report)
//   GET|POST   /projects/:id/job_token_scope/allowlist            (and groups_allowlist)
//   PATCH|DELETE /projects/:id/job_token_scope/allowlist/:target_project_id (and groups_allowlist/:target_group_id)
//   GET|PATCH  /projects/:id/job_token_permissions
//   GET        /projects/:id/job_token_permissions/audit_events
//   GET|PUT    /groups/:id/job_token_policies                       (root namespaces only)
//   GET        /groups/:id/job_token_policies/audit_events
// Each answer is `{status, body, headers}`; refusals throw AdminError.

import { apiPathsIn } from '../routing/canonical.ts'
import type { CatalogRoute, Method } from '../catalog/types.ts'
import type { ValidationIssue } from '../grants/errors.ts'
import type { EntryTargetType, ProjectGrants } from '../grants/model.ts'
import { Router } from '../routing/router.ts'
import { userToken, type Caller } from './auth.ts'
import { AdminError, type AdminService, type ProjectAccess } from './service.ts'
import { scopeRefusal, unknownScopeRefusal, type UserTokenScopes } from './token-scope.ts'
import { auditView, entryView, linkView, mergePackageRules, namespaceAuditView, namespacePoliciesView, parseId, permissionsView, policiesEnabledSetting } from './views.ts'
import { parseUsageWindow, usageReport } from '../usage/report.ts'
import { quoted } from '../text.ts'
import type { Waiter } from '../waiters.ts'

export interface RestAnswer {
  readonly status: number
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>>
}

/** What an endpoint does; `list` and `entry` exist for projects and for groups. */
export type AdminEndpoint = 'scope' | 'usage' | 'project_list' | 'project_entry' | 'group_list' | 'group_entry' | 'permissions' | 'audit_events' |
  'namespace_policies' | 'namespace_audit_events'

export interface RestRequest {
  readonly method: string
  readonly endpoint: AdminEndpoint
  /** The project's (or, for the namespace endpoints, root group's) `:id` as GitLab receives it: a numeric id or the URL-encoded full path. */
  readonly idSegment: string
  /** `:target_project_id` / `:target_group_id` of the entry endpoints, decoded. */
  readonly target?: string
  readonly query: URLSearchParams
  readonly caller: Caller
  readonly requestId: string
  /** Reads the body (JSON or form) merged over the query parameters. */
  readonly params: () => Promise<Record<string, unknown>>
}

// The endpoints as Grape routes: matched by the catalog's own router (src/routing/router.ts), so
// every form GitLab would route to them is the gate's too: the `.json` format on the last static
// segment or integer id (`job_token_scope.json`, `allowlist/5.json`), `:id` with dots or encoded
// slashes. The path given is canonical (src/routing/canonical.ts: `//` collapsed, trailing `/`
// dropped, `%5F` decoded, relative URL root removed).
const ENDPOINTS: ReadonlyArray<readonly [Method, string, AdminEndpoint]> = [
  ['GET', '/projects/:id/job_token_scope', 'scope'],
  ['PATCH', '/projects/:id/job_token_scope', 'scope'],
  ['GET', '/projects/:id/job_token_scope/usage', 'usage'],
  ['GET', '/projects/:id/job_token_scope/allowlist', 'project_list'],
  ['POST', '/projects/:id/job_token_scope/allowlist', 'project_list'],
  ['PATCH', '/projects/:id/job_token_scope/allowlist/:target_project_id', 'project_entry'],
  ['DELETE', '/projects/:id/job_token_scope/allowlist/:target_project_id', 'project_entry'],
  ['GET', '/projects/:id/job_token_scope/groups_allowlist', 'group_list'],
  ['POST', '/projects/:id/job_token_scope/groups_allowlist', 'group_list'],
  ['PATCH', '/projects/:id/job_token_scope/groups_allowlist/:target_group_id', 'group_entry'],
  ['DELETE', '/projects/:id/job_token_scope/groups_allowlist/:target_group_id', 'group_entry'],
  ['GET', '/projects/:id/job_token_permissions', 'permissions'],
  ['PATCH', '/projects/:id/job_token_permissions', 'permissions'],
  ['GET', '/projects/:id/job_token_permissions/audit_events', 'audit_events'],
  ['GET', '/groups/:id/job_token_policies', 'namespace_policies'],
  ['PUT', '/groups/:id/job_token_policies', 'namespace_policies'],
  ['GET', '/groups/:id/job_token_policies/audit_events', 'namespace_audit_events']
]
const METHODS: readonly Method[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']

const ROUTES: readonly CatalogRoute[] = ENDPOINTS.map(([method, pattern, endpoint]) => ({
  id: `admin_${method.toLowerCase()}_${endpoint}`,
  method,
  pattern,
  policies: [],
  skipPolicies: true,
  resource: 'job_token_scope',
  title: `configuration API: ${endpoint}`,
  accessedProject: 'project'
}))
const ENDPOINT_OF = new Map(ROUTES.map((route, i) => [route.id, ENDPOINTS[i]![2]]))
let router: Router | null = null

/**
 * Everything GitLab could route to its `job_token_scope` endpoints (and the gate's own
 * `job_token_permissions` and `job_token_policies`) starts so: the third segment is one of the
 * names, alone, with a format (`.json`) or followed by an escape. All of it is answered by the
 * gate, a 404 where no endpoint matches, so no form of these paths is ever forwarded.
 */
const ADMIN_PREFIX = /^\/(?:projects\/[^/]+\/job_token_(?:scope|permissions)|groups\/[^/]+\/job_token_policies)(?:$|[/.%])/

/**
 * Whether a path outside the relative URL root holds `/api/v4` followed by one of these paths:
 * GitLab serves its API there if its root is not the gate's (GATE_RELATIVE_URL_ROOT unset or
 * wrong), and its allowlist would change behind the gate's back. Every `/api/v4` of the path is
 * tried, as any prefix may be GitLab's root.
 */
export function holdsAdminPathOutsideRoot (path: string): boolean {
  return apiPathsIn(path).some(apiPath => ADMIN_PREFIX.test(apiPath))
}

export type AdminPathMatch =
  | { readonly kind: 'endpoint', readonly endpoint: AdminEndpoint, readonly idSegment: string, readonly target?: string }
  /** OPTIONS: Grape answers 204 with the methods the path has. */
  | { readonly kind: 'options', readonly allow: string }
  | { readonly kind: 'method_not_allowed', readonly allow: string }
  | { readonly kind: 'not_found' }

/**
 * The configuration API's reading of a canonical API path (after `/api/v4`), or null when the
 * path is not the gate's. `method` is the routing method (HEAD is already GET).
 */
export function matchAdminPath (method: string, apiPath: string): AdminPathMatch | null {
  // Hot path (every API request asks): each path has `/job_token_` as its third segment, so a
  // path without it there is none of them (two one-character searches, cheaper than looking for
  // the word anywhere); only the few that have it meet the regular expression.
  const second = apiPath.indexOf('/', 1)
  const third = second === -1 ? -1 : apiPath.indexOf('/', second + 1)
  if (third === -1 || !apiPath.startsWith('/job_token_', third) || !ADMIN_PREFIX.test(apiPath)) return null
  router ??= Router.compile(ROUTES)
  const found = METHODS.filter(m => router!.match(m, apiPath) !== null)
  if (found.length === 0) return { kind: 'not_found' }
  const allow = ['OPTIONS', ...found.flatMap(m => m === 'GET' ? ['GET', 'HEAD'] : [m])].join(', ')
  if (method === 'OPTIONS') return { kind: 'options', allow }
  const match = (found as readonly string[]).includes(method) ? router.match(method, apiPath) : null
  if (match === null) return { kind: 'method_not_allowed', allow }
  const target = match.params.target_project_id ?? match.params.target_group_id
  return {
    kind: 'endpoint',
    endpoint: ENDPOINT_OF.get(match.route.id)!,
    // Parameters come decoded once; GitLab (and the store) take the id or the encoded path.
    idSegment: encodeURIComponent(match.params.id!),
    ...(target === undefined ? {} : { target })
  }
}

const MAX_PER_PAGE = 100

function invalid (issues: readonly ValidationIssue[]): never {
  throw new AdminError('ADMIN_VALIDATION_FAILED', undefined, issues)
}

function paginate<T> (items: readonly T[] | null, query: URLSearchParams): { offset: number, limit: number, headers: (total: number) => Record<string, string>, slice: T[] } {
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

/**
 * What a fine-grained personal access token may do on the configuration API, decided with the
 * same token scopes and project lookups as the enforcement at /api/graphql (handed in by
 * createGate, so admin/ does not import graphql/). Throws a GateError when GitLab cannot tell
 * (503, 502) or will not describe the token (403 GRAPHQL_TOKEN_SCOPES_HIDDEN).
 */
export interface TokenPermissionCheck {
  /** What the token is and, for a legacy one, its scopes (token-scope.ts applies GitLab's rules). */
  scopes (token: string, client?: Waiter): Promise<UserTokenScopes>
  /**
   * `project` is the path's `:id` as the gate received it (an id, or a URL-encoded full path).
   * `fresh`: a write's lookups for one request, where the project and the groups above it are
   * asked of GitLab anew, once each (permission-check.ts FreshLookups); a read's come from the
   * lookups kept for every caller. `client`: the request's; the lookups are given up once it has
   * gone (LookupDropped, src/waiters.ts).
   */
  check (token: string, permission: string, project: string, fresh?: Map<string, Promise<unknown>>, client?: Waiter): Promise<TokenPermissionVerdict>
}

export type TokenPermissionVerdict =
  /** A legacy PAT, OAuth or a token GitLab refuses: its scopes and the Maintainer check decide. */
  | { readonly kind: 'not_fine_grained' }
  | { readonly kind: 'granted' }
  /** `message` is GitLab's sentence naming the missing permission ("Resource: Action") and the project. */
  | { readonly kind: 'missing', readonly permission: string, readonly message: string }

/**
 * The permission a fine-grained token needs at the path's project, per endpoint and method
 * (docs/graphql-tokens.md#the-configuration-apis-rest-endpoints). The writes take the catalog
 * permission of their GraphQL twins (ciJobTokenScopeAddProject, ciJobTokenScopeRemoveProject,
 * ciJobTokenScopeUpdatePolicies), the inbound setting and the gate's own package rules
 * update_job_token_scope; every read read_project, as reading the same through GraphQL's
 * Query.project does. The root namespace endpoints take the operator token only: none.
 */
export function tokenPermissionOf (method: string, endpoint: AdminEndpoint): string | null {
  switch (endpoint) {
    case 'namespace_policies': case 'namespace_audit_events': return null
    case 'scope': case 'permissions': return method === 'GET' ? 'read_project' : 'update_job_token_scope'
    case 'usage': case 'audit_events': return 'read_project'
    case 'project_list': case 'group_list': return method === 'GET' ? 'read_project' : 'create_job_token_scope_allowlist'
    case 'project_entry': case 'group_entry': return method === 'DELETE' ? 'delete_job_token_scope_allowlist' : 'update_job_token_scope'
  }
}

/** Whether the request changes something: GitLab's `read_api` allows GET and HEAD only. */
function isWrite (method: string): boolean {
  return method !== 'GET' && method !== 'HEAD'
}

/**
 * A user token's scopes for the endpoint, checked before the Maintainer check and before any
 * body is read or anything written: a legacy token's scope (token-scope.ts), a fine-grained
 * token's permission at the path's project. Answers the scopes for the check after it.
 */
async function checkTokenPermission (tokens: TokenPermissionCheck | undefined, request: RestRequest, fresh: Map<string, Promise<unknown>> | undefined): Promise<UserTokenScopes | null> {
  if (tokens === undefined || request.caller.kind !== 'user') return null
  const permission = tokenPermissionOf(request.method, request.endpoint)
  if (permission === null) return null
  const token = userToken(request.caller)
  const scopes = await tokens.scopes(token, request.caller.client)
  const refusal = scopeRefusal(scopes, isWrite(request.method))
  if (refusal !== null) throw refusal
  if (scopes.kind !== 'fine_grained') return scopes
  const verdict = await tokens.check(token, permission, request.idSegment, fresh, request.caller.client)
  if (verdict.kind === 'missing') throw new TokenPermissionMissing(verdict.permission, verdict.message)
  return scopes
}

/** A fine-grained token's permission for the endpoint at the project `access()` found, by id. */
async function confirmTokenPermission (tokens: TokenPermissionCheck, request: RestRequest, projectId: number, fresh: Map<string, Promise<unknown>> | undefined): Promise<void> {
  const permission = tokenPermissionOf(request.method, request.endpoint)
  if (permission === null || request.caller.kind !== 'user') return
  const verdict = await tokens.check(userToken(request.caller), permission, String(projectId), fresh, request.caller.client)
  if (verdict.kind === 'missing') throw new TokenPermissionMissing(verdict.permission, verdict.message)
}

/** The refusal of a fine-grained token: 403 ADMIN_TOKEN_PERMISSION_MISSING, GitLab's sentence as the message. */
export class TokenPermissionMissing extends AdminError {
  readonly permission: string
  constructor (permission: string, message: string) {
    super('ADMIN_TOKEN_PERMISSION_MISSING', message)
    this.permission = permission
  }
}

export async function handleRest (service: AdminService, request: RestRequest, tokens?: TokenPermissionCheck): Promise<RestAnswer> {
  if (request.endpoint === 'namespace_policies' || request.endpoint === 'namespace_audit_events') return await namespaceEndpoint(service, request)
  // A write's project and the groups above it are asked anew: a transfer moves a project, by path
  // and by id, from under the groups a lookup kept, and the write acts where it is now.
  const fresh = isWrite(request.method) ? new Map<string, Promise<unknown>>() : undefined
  const scopes = await checkTokenPermission(tokens, request, fresh)
  const access = await service.access(request.caller, request.idSegment)
  // The permission was asked at the project a path named when the target lookup (with the service
  // token, cached) found it; the Maintainer check, and every write, went to the project the
  // caller's own lookup found. A path that changed hands in between would let the token act on a
  // project it holds no permission at: asked again at the id everything here acts on.
  if (scopes?.kind === 'fine_grained' && request.idSegment !== String(access.projectId)) await confirmTokenPermission(tokens!, request, access.projectId, fresh)
  // After the Maintainer check: a token GitLab refuses is answered 401 there.
  const unknown = scopes === null ? null : unknownScopeRefusal(scopes, isWrite(request.method))
  if (unknown !== null) throw unknown
  switch (request.endpoint) {
    case 'permissions': return await permissions(service, access, request)
    case 'audit_events': return await auditEvents(service, access, request)
    case 'scope': return await scope(service, access, request)
    case 'usage': return await usage(service, access, request)
    case 'project_list': case 'group_list': {
      const type: EntryTargetType = request.endpoint === 'project_list' ? 'project' : 'group'
      return request.method === 'GET' ? await listEntries(service, access, request, type) : await addEntry(service, access, request, type)
    }
    case 'project_entry': case 'group_entry':
      return await changeEntry(service, access, request, request.endpoint === 'project_entry' ? 'project' : 'group', request.target ?? '')
  }
}

/**
 * A root namespace's `job_token_policies_enabled` (GitLab 17.11 to 18.4, namespace_setting.rb):
 * for every project under it that does not set its own in /job_token_permissions.
 */
async function namespaceEndpoint (service: AdminService, request: RestRequest): Promise<RestAnswer> {
  const access = await service.namespaceAccess(request.caller, request.idSegment)
  if (request.endpoint === 'namespace_audit_events') {
    const { offset, limit, headers } = paginate(null, request.query)
    const page = await service.store.readNamespaceAudit(access.namespacePath, { offset, limit })
    return { status: 200, body: page.events.map(namespaceAuditView), headers: headers(page.total) }
  }
  if (request.method === 'GET') {
    const stored = await service.store.getNamespace(access.namespacePath)
    return { status: 200, body: namespacePoliciesView(access.namespacePath, stored?.jobTokenPoliciesEnabled ?? null) }
  }
  const { job_token_policies_enabled: given, id: _id, ...rest } = await request.params()
  const issues: ValidationIssue[] = Object.keys(rest).map(key => ({ path: quoted(key), message: 'is not a known field (known: job_token_policies_enabled)' }))
  if (given === undefined) issues.push({ path: 'job_token_policies_enabled', message: 'is missing; true, false or null' })
  const enabled = given === undefined ? null : policiesEnabledSetting(given, issues)
  if (issues.length > 0) invalid(issues)
  const { after } = await service.updateNamespacePolicies(access, enabled, request.requestId)
  return { status: 200, body: namespacePoliciesView(access.namespacePath, after) }
}

async function permissions (service: AdminService, access: ProjectAccess, request: RestRequest): Promise<RestAnswer> {
  const formats = service.packageFormats()
  if (request.method === 'GET') {
    const { doc } = await service.read(access.projectId, access.projectPath)
    return { status: 200, body: permissionsView(doc, formats) }
  }
  // `job_token_policies_enabled`: the project's override of its root namespace's setting (GitLab
  // 17.11 to 18.4); the rest are the per package format rules.
  const { job_token_policies_enabled: enabledGiven, ...registry } = await request.params()
  const doc = await service.update(access, 'update_job_token_permissions', request.requestId, current => {
    const issues: ValidationIssue[] = []
    const rules = enabledGiven !== undefined && Object.keys(registry).length === 0 ? current.packageRules ?? {} : mergePackageRules(registry, current.packageRules, formats, issues)
    const enabled = enabledGiven === undefined ? current.jobTokenPoliciesEnabled ?? null : policiesEnabledSetting(enabledGiven, issues)
    if (rules === null || issues.length > 0) invalid(issues)
    const { packageRules: _old, jobTokenPoliciesEnabled: _enabled, ...rest } = current
    const next: ProjectGrants = {
      ...rest,
      ...(Object.keys(rules).length === 0 ? {} : { packageRules: rules }),
      ...(enabled === null ? {} : { jobTokenPoliciesEnabled: enabled })
    }
    const registryGiven = Object.keys(registry).length > 0
    return {
      doc: next,
      before: { ...(registryGiven ? { package_registry: current.packageRules ?? {} } : {}), ...(enabledGiven === undefined ? {} : { job_token_policies_enabled: current.jobTokenPoliciesEnabled ?? null }) },
      after: { ...(registryGiven ? { package_registry: rules } : {}), ...(enabledGiven === undefined ? {} : { job_token_policies_enabled: enabled }) }
    }
  })
  return { status: 200, body: permissionsView(doc, formats) }
}

async function auditEvents (service: AdminService, access: ProjectAccess, request: RestRequest): Promise<RestAnswer> {
  const { offset, limit, headers } = paginate(null, request.query)
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
  // GitLab refuses to turn off a scope the instance enforces (enforce_ci_inbound_job_token_scope_enabled):
  // stored, the project's `false` would open it to every job the day the instance stops enforcing.
  if (!enabled && service.settings.enforceInboundScope) throw new AdminError('ADMIN_INBOUND_SCOPE_ENFORCED')
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
  const { slice, headers } = paginate(views, request.query)
  return { status: 200, body: slice, headers: headers(views.length) }
}

async function addEntry (service: AdminService, access: ProjectAccess, request: RestRequest, type: EntryTargetType): Promise<RestAnswer> {
  const { entry } = await service.addEntry(access, type, await request.params(), request.requestId)
  return { status: 201, body: linkView(access.projectId, entry) }
}

async function changeEntry (service: AdminService, access: ProjectAccess, request: RestRequest, type: EntryTargetType, target: string): Promise<RestAnswer> {
  const targetId = parseId(target)
  if (targetId === null) invalid([{ path: type === 'project' ? 'target_project_id' : 'target_group_id', message: 'must be a positive integer id' }])
  if (request.method === 'DELETE') {
    await service.removeEntry(access, type, targetId, request.requestId)
    return { status: 204 }
  }
  const { entry } = await service.changeEntry(access, type, targetId, await request.params(), request.requestId)
  return { status: 200, body: linkView(access.projectId, entry) }
}
