// Whether a fine-grained personal access token's scopes grant what a GraphQL document touches,
// at the boundary GitLab checks it at (docs/graphql-tokens.md):
// - Project and Group boundaries: a `personal_projects`, `all_memberships` or
//   `selected_memberships` scope holding the permission. `all_memberships` reaches every group
//   and project the user can reach (GitLab's own policies decide the rest), `selected_memberships`
//   the selected projects and every project and subgroup under a selected group,
//   `personal_projects` the projects in the user's own namespace;
// - Instance: an `instance` scope; User: a `user` scope.
// A target the gate cannot name (`currentUser { ... }`, a global ID of another object) passes when
// some scope of the boundary's kind holds the permission: GitLab checks the object itself.
// The target is looked up only when the answer depends on where it lies.

import type { Boundary, GraphqlCatalog } from './catalog.ts'
import type { BoundaryTarget } from './explain.ts'
import { lookupError, type FineGrainedScopes, type GranularScope } from './token-scopes.ts'
import { answersAsked, GitlabUnavailable, type GitlabAnswer, type GitlabCall, type GitlabClient } from '../gitlab/client.ts'
import { createLoaderCache, tokenKey, type Clock } from '../identity/cache.ts'
import { apiSegment, loggedPath, trimEnds } from '../text.ts'
import { shareLoad, type Waiter } from '../waiters.ts'

/** Longer target ids and paths are no project or group of GitLab's. */
const MAX_TARGET_CHARS = 8192

/**
 * The lookups' cache key of a path or id the client wrote (up to MAX_TARGET_CHARS, URL-encoded):
 * past 64 characters, its SHA-256 (`#` never occurs in an encoded path). Kept whole, the keys of
 * made-up paths of 8 KB, each one lookup whose "not found" stays until pushed out, held 80 MB in
 * each of the two caches at their 10,000 entries.
 */
function lookupKey (text: string): string {
  return text.length <= 64 ? text : `#${tokenKey(text)}`
}

/** Text without a lone surrogate (String#isWellFormed, which ES2023's types do not declare). */
const WELL_FORMED = /^(?:[^\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])*$/

export interface TargetFacts {
  readonly projectId?: number
  /** The target group and every ancestor, or the project's namespace and its ancestors (nearest first). */
  readonly groupIds: readonly number[]
  /** The user whose personal namespace holds the target (a project in a user namespace, or that namespace). */
  readonly personalNamespaceOwnerId?: number
  /** The target's full path as GitLab spells it, for messages. */
  readonly fullPath?: string
}

/**
 * A write's lookups of its targets and of the groups above them, for one request: asked of GitLab
 * anew, once each, never from the lookups kept for every caller (createTargetResolver).
 */
export type FreshLookups = Map<string, Promise<unknown>>

/**
 * null: not found, or not something the gate can resolve. `fresh`: the target is looked up there
 * (FreshLookups). `waiter`: the request's client (none: one that never goes); a lookup every
 * client waiting for has gone is given up, its GitLab call aborted (LookupDropped, src/waiters.ts).
 */
export type TargetResolver = (target: BoundaryTarget, fresh?: FreshLookups, waiter?: Waiter) => Promise<TargetFacts | null>

export type PermissionVerdict =
  | { readonly ok: true }
  | { readonly ok: false, readonly permission: string, readonly boundary: Boundary, readonly message: string }

/** Which scope accesses grant a boundary at all. */
const ACCESSES_OF: Readonly<Record<Boundary, ReadonlyArray<GranularScope['access']>>> = {
  Project: ['personal_projects', 'all_memberships', 'selected_memberships'],
  Group: ['personal_projects', 'all_memberships', 'selected_memberships'],
  Instance: ['instance'],
  User: ['user']
}

export interface CheckOptions {
  /**
   * How GitLab names a permission in its deny message, "Resource: Action"
   * (`permissionLabels(catalog)`); without it, the permission's name is used.
   */
  readonly labels?: ReadonlyMap<string, string>
  /** A write's: its targets are looked up anew (FreshLookups). */
  readonly fresh?: FreshLookups
  /** The request's client: its target lookups are given up once it has gone (TargetResolver). */
  readonly waiter?: Waiter
}

/** "Job Token Scope Allowlist: Create" per permission, as GitLab's deny message writes them. */
export function permissionLabels (catalog: GraphqlCatalog): ReadonlyMap<string, string> {
  const labels = new Map<string, string>()
  for (const entry of catalog.entries) {
    if (!labels.has(entry.permission)) labels.set(entry.permission, `${entry.resource}: ${entry.action}`)
  }
  return labels
}

const BOUNDARY_ORDER: readonly Boundary[] = ['Project', 'Group', 'User', 'Instance']

/**
 * Whether `scopes` grant one of `needs` (a Touch's permissions: any one of its boundaries
 * suffices) on `target`. Resolves the target at most once, and only when a scope's answer
 * depends on where the target lies.
 */
export async function checkPermission (
  scopes: FineGrainedScopes,
  needs: ReadonlyArray<{ permission: string, boundary: Boundary }>,
  target: BoundaryTarget | null,
  resolve: TargetResolver,
  options: CheckOptions = {}
): Promise<PermissionVerdict> {
  if (needs.length === 0) return { ok: true }
  // A global ID of another object (a vulnerability, an issue) names no project or group the gate
  // can look up: GitLab finds the object and checks its boundary itself.
  const named = target !== null && target.kind !== 'object' ? target : null
  // GitLab checks a field listed at several boundaries at the one its object is
  // (GranularTokenAuthorization#find_matching_directive): a project target is checked at the
  // Project boundary, a group target at the Group boundary, when the entry lists that boundary.
  const kindBoundary: Boundary | null = named?.kind === 'project' ? 'Project' : named?.kind === 'group' ? 'Group' : null
  const applicable = kindBoundary !== null && needs.some(n => n.boundary === kindBoundary)
    ? needs.filter(n => n.boundary === kindBoundary || n.boundary === 'User' || n.boundary === 'Instance')
    : needs
  let facts: TargetFacts | null | undefined
  const holding = (need: { permission: string, boundary: Boundary }): GranularScope[] =>
    scopes.scopes.filter(s => ACCESSES_OF[need.boundary].includes(s.access) && s.permissions.includes(need.permission))
  // Cheap grants first: scopes that need no lookup.
  for (const need of applicable) {
    const held = holding(need)
    if (held.length === 0) continue
    if (need.boundary === 'Instance' || need.boundary === 'User') return { ok: true }
    if (named === null) return { ok: true }
    if (held.some(s => s.access === 'all_memberships')) return { ok: true }
  }
  for (const need of applicable) {
    if (named === null || need.boundary === 'Instance' || need.boundary === 'User') continue
    const held = holding(need)
    if (held.length === 0) continue
    if (facts === undefined) facts = await resolve(named, options.fresh, options.waiter)
    if (facts === null) break
    const f = facts
    if (held.some(s => reaches(s, need.boundary, f, scopes.userId))) return { ok: true }
  }
  // GitLab names the missing permissions of the first boundary, in its order (project, group,
  // user, instance): AuthorizeGranularScopesService#access_denied_error.
  const boundary = BOUNDARY_ORDER.find(b => applicable.some(n => n.boundary === b))!
  const missing = applicable.filter(n => n.boundary === boundary)
  return { ok: false, permission: missing[0]!.permission, boundary, message: denyMessage(missing.map(n => n.permission), boundary, named, facts, options.labels) }
}

/** Whether a scope that holds the permission reaches the target (Project and Group boundaries). */
function reaches (scope: GranularScope, boundary: Boundary, facts: TargetFacts, userId: number | null): boolean {
  switch (scope.access) {
    case 'all_memberships':
      return true
    case 'selected_memberships':
      // A selected project covers that project; a selected group, itself and everything under it.
      if (scope.projectId !== null && boundary === 'Project' && facts.projectId === scope.projectId) return true
      return scope.groupId !== null && facts.groupIds.includes(scope.groupId)
    case 'personal_projects':
      // The user's own namespace holds projects only: a group is never personal.
      return boundary === 'Project' && facts.projectId !== undefined && userId !== null && facts.personalNamespaceOwnerId === userId
    default:
      return false
  }
}

/**
 * GitLab's wording (AuthorizeGranularScopesService#access_denied_error): "Access denied: This
 * operation requires a fine-grained personal access token with the following project
 * permissions: [Job Token Scope Allowlist: Create]." The gate adds the target it checked.
 */
function denyMessage (permissions: readonly string[], boundary: Boundary, target: BoundaryTarget | null, facts: TargetFacts | null | undefined, labels: ReadonlyMap<string, string> | undefined): string {
  const names = [...new Set(permissions.map(p => labels?.get(p) ?? p))].sort().join(', ')
  let message = `Access denied: This operation requires a fine-grained personal access token with the following ${boundary.toLowerCase()} permissions: [${names}].`
  if (target !== null && (boundary === 'Project' || boundary === 'Group')) {
    // The document's text when GitLab did not name it: a token pasted there is written `[token]`.
    const given = facts?.fullPath ?? target.path ?? target.id
    const name = given === undefined ? undefined : loggedPath(given)
    if (name !== undefined && name !== '') message += facts === null ? ` The ${target.kind} ${name} was not found.` : ` Target: ${target.kind} ${name}.`
  }
  return message
}

export interface TargetResolverOptions {
  readonly gitlab: GitlabClient
  /** A token for the lookups, sent as PRIVATE-TOKEN. Default: the client's service token (GATE_SERVICE_TOKEN). */
  readonly serviceToken?: string
  /** How long a lookup is kept. Default 60 s. */
  readonly ttlMs?: number
  readonly max?: number
  readonly clock?: Clock
}

/** Counter labels of the client (`job_token_gate_gitlab_requests_total{endpoint}`). */
export const TARGET_PROJECT_ENDPOINT = 'graphql_target_project'
export const TARGET_GROUP_ENDPOINT = 'graphql_target_group'
export const TARGET_NAMESPACE_ENDPOINT = 'graphql_target_namespace'

interface GroupNode { readonly id: number, readonly parentId: number | null, readonly fullPath: string }

/**
 * How a target's lookups are asked: `fresh`, a write's (FreshLookups); `waiter`, who waits for
 * them (the load they serve); `signal`, aborted once nobody does (the calls of that load).
 */
interface Asking { readonly fresh?: FreshLookups | undefined, readonly waiter?: Waiter | undefined, readonly signal?: AbortSignal | undefined }

/**
 * Looks projects, groups and namespaces up by path or id (`GET /projects/:id`, `/groups/:id`,
 * `/namespaces/:id`, URL-encoded paths), walking a group's parents by id; cached, single flight.
 * GitLab unreachable throws GRAPHQL_TARGET_LOOKUP_UNAVAILABLE, an unreadable answer
 * GRAPHQL_TARGET_LOOKUP_FAILED; not found (404, or hidden from the lookup token) is null.
 */
export function createTargetResolver (options: TargetResolverOptions): TargetResolver {
  const { gitlab } = options
  const as: GitlabCall['as'] = options.serviceToken !== undefined && options.serviceToken !== ''
    ? { 'private-token': options.serviceToken }
    : 'service'
  if (as === 'service' && !gitlab.hasServiceToken) throw new TypeError('looking up the projects and groups of GraphQL requests needs GATE_SERVICE_TOKEN')
  const clock = options.clock === undefined ? {} : { clock: options.clock }
  const ttlMs = options.ttlMs ?? 60_000
  const max = options.max ?? 10_000
  // Not found is kept briefly: a project created a moment later is seen soon, a flood of one
  // unknown path costs one lookup per few seconds.
  const targets = createLoaderCache<TargetFacts | null>({ max, ttlMs, lifetimeOf: f => f === null ? Math.min(ttlMs, 5_000) : undefined, ...clock })
  const groups = createLoaderCache<GroupNode | null>({ max, ttlMs, ...clock })

  const get = async (path: string, endpoint: string, signal: AbortSignal | undefined): Promise<Readonly<Record<string, unknown>> | null> => {
    let answer: GitlabAnswer
    try {
      answer = await gitlab.get(path, { endpoint, as, ...(signal === undefined ? {} : { signal }) })
    } catch (err) {
      if (err instanceof GitlabUnavailable) throw lookupError('GRAPHQL_TARGET_LOOKUP_UNAVAILABLE', `GET ${path} failed: ${err.reason}`, err)
      throw err
    }
    if (answer.status === 404) return null
    if (answer.status === 429 || answer.status >= 500) throw lookupError('GRAPHQL_TARGET_LOOKUP_UNAVAILABLE', `GET ${path} answered ${answer.status}`)
    if (answer.status !== 200 || answer.body === undefined) throw lookupError('GRAPHQL_TARGET_LOOKUP_FAILED', `GET ${path} answered ${answer.status}${answer.status === 200 ? ' without a JSON object' : ''}`)
    return answer.body
  }
  const positiveId = (v: unknown): number | null => typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : null
  /** `GET /<kind>/<segment>`'s id, which must be the one asked for (answersAsked). */
  const answeredId = (body: Readonly<Record<string, unknown>>, kind: string, segment: string): number | null => {
    const id = positiveId(body.id)
    if (id !== null && !answersAsked(segment, id)) throw lookupError('GRAPHQL_TARGET_LOOKUP_FAILED', `GET /${kind}/${segment} answered ${kind} ${id}`)
    return id
  }

  /** `at.fresh`: asked of GitLab once for the request, not from (nor into) the cache. */
  const group = async (segment: string, at: Asking): Promise<GroupNode | null> => {
    const load = async (signal: AbortSignal): Promise<GroupNode | null> => await groupOf(segment, signal)
    const key = lookupKey(segment.toLowerCase())
    return at.fresh !== undefined ? await onceFor(at.fresh, `node:${key}`, load, at.waiter) : await groups.get(key, load, at.waiter)
  }

  const groupOf = async (segment: string, signal: AbortSignal): Promise<GroupNode | null> => {
    const body = await get(`/api/v4/groups/${segment}?with_projects=false`, TARGET_GROUP_ENDPOINT, signal)
    if (body === null) return null
    const id = answeredId(body, 'groups', segment)
    if (id === null || typeof body.full_path !== 'string') throw lookupError('GRAPHQL_TARGET_LOOKUP_FAILED', `GET /groups/${segment} answered a group without id or full_path`)
    const parentId = body.parent_id === null || body.parent_id === undefined ? null : positiveId(body.parent_id)
    if (parentId === null && body.parent_id !== null && body.parent_id !== undefined) throw lookupError('GRAPHQL_TARGET_LOOKUP_FAILED', `GET /groups/${segment} answered an unreadable parent_id`)
    return { id, parentId, fullPath: body.full_path }
  }

  /**
   * The group and its ancestors, nearest first. `fresh`: a write's, each asked anew: a group's id
   * never changes hands, its parent does (a transfer), and GitLab runs the write where it is now.
   */
  const chain = async (groupId: number, at: Asking): Promise<number[]> => {
    const ids: number[] = []
    let next: number | null = groupId
    while (next !== null) {
      if (ids.includes(next) || ids.length >= 32) throw lookupError('GRAPHQL_TARGET_LOOKUP_FAILED', `group ${groupId} has a parent cycle or is nested too deep`)
      ids.push(next)
      const node: GroupNode | null = await group(String(next), at)
      if (node === null) throw lookupError('GRAPHQL_TARGET_LOOKUP_FAILED', `group ${next}, an ancestor of group ${groupId}, was not found`)
      next = node.parentId
    }
    return ids
  }

  const namespaceFacts = async (ns: unknown, what: string, at: Asking): Promise<{ groupIds: number[], personalNamespaceOwnerId?: number }> => {
    const n = ns as { id?: unknown, kind?: unknown } | null | undefined
    const id = positiveId(n?.id)
    if (id === null || (n?.kind !== 'group' && n?.kind !== 'user')) throw lookupError('GRAPHQL_TARGET_LOOKUP_FAILED', `${what} answered without a readable namespace`)
    if (n.kind === 'group') return { groupIds: await chain(id, at) }
    return { groupIds: [] }
  }

  const project = async (segment: string, at: Asking): Promise<TargetFacts | null> => {
    const body = await get(`/api/v4/projects/${segment}`, TARGET_PROJECT_ENDPOINT, at.signal)
    if (body === null) return null
    const id = answeredId(body, 'projects', segment)
    if (id === null) throw lookupError('GRAPHQL_TARGET_LOOKUP_FAILED', `GET /projects/${segment} answered a project without id`)
    const ns = await namespaceFacts(body.namespace, `GET /projects/${segment}`, at)
    // A project in a user namespace names its owner (lib/api/entities/project.rb: `owner`).
    const ownerId = (body.namespace as { kind?: unknown }).kind === 'user' ? positiveId((body.owner as { id?: unknown } | null | undefined)?.id) : null
    return {
      projectId: id,
      groupIds: ns.groupIds,
      ...(ownerId === null ? {} : { personalNamespaceOwnerId: ownerId }),
      ...(typeof body.path_with_namespace === 'string' ? { fullPath: body.path_with_namespace } : {})
    }
  }

  const groupFacts = async (segment: string, at: Asking): Promise<TargetFacts | null> => {
    const node = await group(segment, at)
    if (node === null) return null
    // The group just asked by path is the first of its chain: not asked again by id.
    const { fresh } = at
    if (fresh !== undefined && !fresh.has(`node:${node.id}`)) fresh.set(`node:${node.id}`, Promise.resolve(node))
    return { groupIds: await chain(node.id, at), fullPath: node.fullPath }
  }

  const namespace = async (segment: string, at: Asking): Promise<TargetFacts | null> => {
    const body = await get(`/api/v4/namespaces/${segment}`, TARGET_NAMESPACE_ENDPOINT, at.signal)
    if (body === null) return null
    const id = answeredId(body, 'namespaces', segment)
    if (id === null) throw lookupError('GRAPHQL_TARGET_LOOKUP_FAILED', `GET /namespaces/${segment} answered without an id`)
    const fullPath = typeof body.full_path === 'string' ? { fullPath: body.full_path } : {}
    if (body.kind === 'group') return { groupIds: await chain(id, at), ...fullPath }
    if (body.kind === 'user') {
      const ownerId = positiveId(body.owner_id)
      return { groupIds: [], ...(ownerId === null ? {} : { personalNamespaceOwnerId: ownerId }), ...fullPath }
    }
    throw lookupError('GRAPHQL_TARGET_LOOKUP_FAILED', `GET /namespaces/${segment} answered an unknown kind`)
  }

  /**
   * A full path that names no kind (`fullPath` of a mutation such as projectCiCdSettingsUpdate):
   * GitLab's GraphQL takes it as a project's, else a group's (BoundaryExtractor#resolve_path:
   * `Project.find_by_full_path(path) || Group.find_by_full_path(path)`). A user namespace is
   * neither. The namespaces API would not do: it shows no project.
   */
  const projectOrGroup = async (segment: string, raw: string, at: Asking): Promise<TargetFacts | null> => {
    // A path of digits is an id to the REST API: what it finds counts only with that path (below).
    const asked = (facts: TargetFacts | null): facts is TargetFacts => facts !== null && (!/^\d+$/.test(segment) || facts.fullPath?.toLowerCase() === raw.toLowerCase())
    const found = await project(segment, at)
    if (asked(found)) return found
    const group = await groupFacts(segment, at)
    return asked(group) ? group : null
  }

  return async (target, fresh, waiter) => {
    if (target.kind === 'object') return null
    const raw = target.id ?? target.path
    // GitLab has no longer one (a path is at most 255 characters a level, 20 levels deep): not
    // found, without asking it a URL it would refuse (414) and the gate would count as a failure.
    if (raw === undefined || raw === '' || raw.length > MAX_TARGET_CHARS) return null
    // Nor one with a lone surrogate (`"\ud800"` in JSON variables), which no URL can carry
    // (encodeURIComponent throws) and no path of GitLab's holds.
    if (!WELL_FORMED.test(raw)) return null
    // A global ID's id that is not digits (`gid://gitlab/Project/300abc`, which ActiveRecord reads
    // as 300): not looked up, as the REST API would read it as a path.
    if (target.id !== undefined && !/^\d+$/.test(target.id)) return null
    // An id is digits; a path is a full path (`grp/sub/app`), URL-encoded as one segment, its dots
    // too (escapeDots: `.txt` at the end would have GitLab answer text, not JSON). GitLab
    // reads a global ID's `0300` as id 300 (ActiveRecord casts it): asked and kept without the
    // zeros, so that `gid://gitlab/Project/0300`, `/00300`, ... are one lookup, not one each, and
    // one key. A full path of digits keeps them: `0300` is no path `300` is, and what a path's
    // lookup finds depends on the path asked (below), so the two share no key.
    const segment = !/^\d+$/.test(raw) ? apiSegment(trimEnds(raw, '/')) : target.id !== undefined ? raw.replace(/^0+(?=\d)/, '') : raw
    if (segment === '' || segment === '0') return null
    const byPath = target.kind === 'namespace' && target.id === undefined
    // A path names the project or group that holds it now, which a rename or a transfer changes,
    // and a project or group (by path or id) is under the groups a transfer puts it in: a write's
    // target and the groups above it are asked anew (once per request), never taken from a lookup
    // up to 60 s old, made for any caller, while GitLab runs the write where they are then.
    const key = `${byPath ? 'path' : target.kind}:${lookupKey(segment.toLowerCase())}`
    // Its lookups are given up with everyone waiting for it (the groups above it, with it).
    const load = async (signal: AbortSignal, waiters: Waiter): Promise<TargetFacts | null> => {
      const at: Asking = { fresh, waiter: waiters, signal }
      if (target.kind === 'project') return await project(segment, at)
      if (target.kind === 'group') return await groupFacts(segment, at)
      if (byPath) return await projectOrGroup(segment, raw, at)
      return await namespace(segment, at)
    }
    const facts = fresh !== undefined ? await onceFor(fresh, key, load, waiter) : await targets.get(key, load, waiter)
    // The REST API reads a segment of digits as an id (`GET /groups/10` is group 10), GitLab's
    // GraphQL a full path as a path (`group(fullPath: "10")` is the top-level group or user
    // namespace named "10"): what an id of digits finds is the path's object only if it has that path.
    if (facts !== null && target.id === undefined && /^\d+$/.test(segment) && facts.fullPath?.toLowerCase() !== raw.toLowerCase()) return null
    return facts
  }
}

/**
 * What `key` loads, asked once for the request (FreshLookups) however many of its targets need it;
 * given up, as the cached lookups are, once `waiter` (the request's client) has gone.
 */
function onceFor<T> (fresh: FreshLookups, key: string, load: (signal: AbortSignal, waiters: Waiter) => Promise<T>, waiter: Waiter | undefined): Promise<T> {
  let asked = fresh.get(key) as Promise<T> | undefined
  if (asked === undefined) fresh.set(key, asked = shareLoad(waiter, load, () => {}).pending)
  return asked
}
