// Who may call the configuration API:
// - the operator token (GATE_ADMIN_TOKEN, as PRIVATE-TOKEN or Authorization: Bearer), compared
//   in constant time, may change any project;
// - a GitLab user token (PAT or OAuth, same headers) whose holder has the Maintainer role or
//   higher on the project: the gate asks GitLab `GET /api/v4/projects/:id` with that token and
//   reads `permissions.project_access` / `permissions.group_access` (lib/api/entities/project.rb;
//   access level 40 = Maintainer), cached briefly by the token's SHA-256;
// - a CI/CD job token never: 403, whatever its job's role;
// - no credential: 401.

import { createHash, timingSafeEqual } from 'node:crypto'
import { answersAsked, createGitlabClient as createGitlabApi, movedProjectId, type GitlabAnswer, type GitlabCall, type GitlabClient as GitlabApi } from '../gitlab/client.ts'
import { createLoaderCache, tokenKey, type Clock } from '../identity/cache.ts'
import { shareLoad, type Waiter } from '../waiters.ts'
import { decodeBasic, headerLines, type HeaderSource } from '../identity/credentials.ts'
import { isJobTokenShape } from '../identity/token-shape.ts'
import { apiSegment, escapeDots } from '../text.ts'

export const MAINTAINER_ACCESS = 40

export type Caller =
  | { readonly kind: 'none' }
  | { readonly kind: 'job_token' }
  | { readonly kind: 'ambiguous' }
  | { readonly kind: 'operator' }
  /**
   * `header` is what to send GitLab to act as the user; `hash` keys the caches; `client`: the
   * request's, whose lookups are given up once it has gone (none: one that never goes).
   */
  | { readonly kind: 'user', readonly header: Readonly<Record<string, string>>, readonly hash: string, readonly client?: Waiter }

function sameSecret (a: string, b: string): boolean {
  // Hash both so the comparison is constant-time whatever the lengths.
  const ha = createHash('sha256').update(a).digest()
  const hb = createHash('sha256').update(b).digest()
  return timingSafeEqual(ha, hb)
}

/**
 * The token of an Authorization header as GitLab's token finders read it: Bearer's, or Basic's
 * password (empty when none); `job_token` for Basic with a job token's user name or password,
 * which is how job tokens reach the package registries (gitlab-ci-token:<token>); null for no
 * header or another scheme. Rails splits the scheme off at the first white space and decodes
 * the rest (spaces included).
 */
export function authorizationToken (authorization: string | undefined): { readonly kind: 'bearer' | 'basic', readonly token: string } | { readonly kind: 'job_token' } | null {
  if (authorization === undefined) return null
  const m = /^\s*(Bearer|Basic)\s+(\S(?:.*\S)?)\s*$/is.exec(authorization)
  if (m === null) return null
  if (m[1]!.toLowerCase() === 'bearer') return { kind: 'bearer', token: m[2]! }
  const { user, password } = decodeBasic(m[2]!)
  if (user === 'gitlab-ci-token' || isJobTokenShape(user) || isJobTokenShape(password)) return { kind: 'job_token' }
  return { kind: 'basic', token: password }
}

/** Finds the caller's credential in the headers (and a `job_token`/`private_token` query parameter). */
export function findCaller (request: HeaderSource, query: string, adminToken: string | undefined, client?: Waiter): Caller {
  const params = new URLSearchParams(query)
  // Headers as Puma hands them to Rails (headerLines: `Private_Token` too, every line).
  if (headerLines(request, 'job-token').length > 0 || params.has('job_token')) return { kind: 'job_token' }
  const privateTokens = headerLines(request, 'private-token')
  const authorizations = headerLines(request, 'authorization')
  // Puma joins repeated lines into one value that neither line is.
  if (privateTokens.length > 1 || authorizations.length > 1) return { kind: 'ambiguous' }
  const tokens: Array<{ token: string, header: Record<string, string> }> = []
  const privateToken = privateTokens[0]?.trim() ?? params.get('private_token') ?? undefined
  if (privateToken !== undefined && privateToken !== '') tokens.push({ token: privateToken, header: { 'private-token': privateToken } })
  const authorization = authorizationToken(authorizations[0])
  if (authorization?.kind === 'job_token') return { kind: 'job_token' }
  // Basic with another password is no caller credential: the configuration API reads Bearer only.
  if (authorization?.kind === 'bearer') tokens.push({ token: authorization.token, header: { authorization: `Bearer ${authorization.token}` } })
  if (tokens.some(t => isJobTokenShape(t.token))) return { kind: 'job_token' }
  if (tokens.length === 0) return { kind: 'none' }
  if (tokens.length > 1 && tokens[0]!.token !== tokens[1]!.token) return { kind: 'ambiguous' }
  const { token, header } = tokens[0]!
  if (adminToken !== undefined && adminToken !== '' && sameSecret(token, adminToken)) return { kind: 'operator' }
  return client === undefined ? { kind: 'user', header, hash: tokenKey(token) } : { kind: 'user', header, hash: tokenKey(token), client }
}

/** The token a user caller sends GitLab (PRIVATE-TOKEN or Authorization: Bearer), for checks that need the token itself. */
export function userToken (caller: Extract<Caller, { kind: 'user' }>): string {
  return caller.header['private-token'] ?? (caller.header.authorization ?? '').replace(/^Bearer /, '')
}

/** What GitLab says about a project, as seen by one credential. */
export type ProjectLookup =
  | { readonly kind: 'found', readonly id: number, readonly path: string, readonly accessLevel: number }
  | { readonly kind: 'unauthenticated' }
  /**
   * `refused`: GitLab answered 403, not 404: its API refuses the credential the lookup (a personal
   * access token without `api` or `read_api`, `insufficient_scope`; a fine-grained one without
   * `read_project`), which says nothing of whether a project is there.
   */
  | { readonly kind: 'not_found', readonly refused?: true }
  | { readonly kind: 'unavailable', readonly detail: string }

export interface UserLookup { readonly id: number, readonly username?: string }

/** A group found by full path; null when GitLab does not show it to the caller. */
export type GroupLookup =
  | { readonly kind: 'found', readonly id: number, readonly path: string }
  | { readonly kind: 'not_found' }
  | { readonly kind: 'unavailable', readonly detail: string }

/** Whose credential a lookup carries: a user's headers, or the service token (`'service'`). */
export type LookupCredential = GitlabCall['as']

export interface GitlabClient {
  /**
   * `GET /api/v4/projects/:id` as `header`'s holder; `idSegment` is the URL-encoded id or path.
   * `client`: the request's (none: one that never goes); a lookup every client waiting for has
   * left is given up, rejecting with LookupDropped (src/waiters.ts), as signedIn() is.
   */
  project (idSegment: string, header: LookupCredential, cacheKey: string | null, client?: Waiter): Promise<ProjectLookup>
  /** `GET /api/v4/groups/:path` as `header`'s holder (not cached). */
  group (fullPath: string, header: LookupCredential): Promise<GroupLookup>
  /** `GET /api/v4/user` as the holder (for the audit's actor); null if GitLab does not say. */
  user (header: Readonly<Record<string, string>>, cacheKey: string, client?: Waiter): Promise<UserLookup | null>
  /**
   * Whether GitLab signs a user in with `header` (`GET /api/v4/user`: 200 yes, 401 no; 403
   * `'refused'`: a user its API refuses, such as one who has not accepted the instance's terms);
   * not cached.
   */
  signedIn (header: Readonly<Record<string, string>>, client?: Waiter): Promise<boolean | 'refused' | 'unavailable'>
  /** Calls keyed `endpoint:outcome` (src/gitlab/client.ts), for metrics: a shared client's, other callers' included. */
  stats (): Readonly<Record<string, number>>
  /** Whether lookups may be made as the service token (GATE_SERVICE_TOKEN is set). */
  readonly hasServiceToken: boolean
  /** Closes the client's Pool when it made its own; a shared one is its owner's to close. */
  close (): Promise<void>
}

export interface GitlabClientOptions {
  /**
   * The gate's GitLab client (src/gitlab/client.ts), shared with the identity stage; the gate
   * always passes it. Without it (tools, tests), one is made from the options below, and closed
   * by close().
   */
  readonly client?: GitlabApi
  readonly upstreamUrl?: string
  readonly relativeUrlRoot?: string
  readonly timeoutMs?: number
  /** How long a positive answer is reused. Default 30 s: a revoked role stops working within it. */
  readonly ttlMs?: number
  readonly clock?: Clock
}

/** Endpoint names for the client's counters, apart from the identity stage's (job, project, group). */
const PROJECT_ENDPOINT = 'project_access'
const GROUP_ENDPOINT = 'group_by_path'
const USER_ENDPOINT = 'user'

/**
 * Where a project lookup is kept: by the token's hash and the `:id` as GitLab reads it, an id
 * without its leading zeros (GitLab finds `000200` as project 200), a path in any case; one past
 * 64 characters by its hash. Kept as sent, any user's lookups of a project they see, its id spelled
 * with up to 4,000 zeros, grew the gate by that much each for as long as the cache kept them
 * (10,000: some 40 MiB), and asked GitLab again for every spelling.
 */
function projectCacheKey (cacheKey: string, idSegment: string): string {
  const id = /^\d+$/.test(idSegment) ? idSegment.replace(/^0+(?=\d)/, '') : idSegment.toLowerCase()
  return id.length > 64 ? `${cacheKey}:#${tokenKey(id)}` : `${cacheKey}:${id}`
}

export function createGitlabClient (options: GitlabClientOptions): GitlabClient {
  const ttlMs = options.ttlMs ?? 30_000
  const clock = options.clock === undefined ? {} : { clock: options.clock }
  if (options.client === undefined && options.upstreamUrl === undefined) throw new TypeError('the configuration API\'s GitLab lookups need the gate\'s GitLab client or an upstream URL')
  const api = options.client ?? createGitlabApi({
    url: options.upstreamUrl!,
    relativeUrlRoot: options.relativeUrlRoot ?? '',
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs })
  })
  // Only answers that grant something are kept, by token hash: a refusal or an outage is asked again.
  const projects = createLoaderCache<ProjectLookup>({ max: 10_000, ttlMs, lifetimeOf: p => p.kind === 'found' ? undefined : 0, ...clock })
  const users = createLoaderCache<UserLookup | null>({ max: 10_000, ttlMs, lifetimeOf: u => u === null ? 0 : undefined, ...clock })

  /** `GET /api/v4/<path>`, dot segments resolved as a URL would. */
  const get = async (path: string, header: LookupCredential, endpoint: string, signal?: AbortSignal): Promise<GitlabAnswer> => {
    const url = new URL(path, 'http://gitlab/api/v4/')
    return await api.get(url.pathname + url.search, { endpoint, as: header, ...(signal === undefined ? {} : { signal }) })
  }

  const lookupProject = async (idSegment: string, header: LookupCredential, signal?: AbortSignal): Promise<ProjectLookup> => {
    let answer: GitlabAnswer
    let asked = idSegment
    try {
      answer = await get(`projects/${escapeDots(idSegment)}`, header, PROJECT_ENDPOINT, signal)
      // A moved project's old path: GitLab redirects to /projects/<id>, and its handlers take the
      // request to that project (find_project follows redirects), so the role asked is there.
      const moved = answer.status === 301 || answer.status === 302 ? movedProjectId(answer.location) : undefined
      if (moved !== undefined && !/^\d+$/.test(idSegment)) {
        asked = moved
        answer = await get(`projects/${moved}`, header, PROJECT_ENDPOINT, signal)
      }
    } catch (err) {
      return { kind: 'unavailable', detail: (err as Error).message }
    }
    if (answer.status === 401) return { kind: 'unauthenticated' }
    // GitLab answers 404 for a project the caller may not see; 403 when its API refuses the
    // credential this lookup, whatever the project (such a token may still write packages).
    if (answer.status === 403) return { kind: 'not_found', refused: true }
    if (answer.status === 404) return { kind: 'not_found' }
    if (answer.status !== 200) return { kind: 'unavailable', detail: `GitLab answered ${answer.status}` }
    const body = answer.body as { id?: unknown, path_with_namespace?: unknown, permissions?: { project_access?: { access_level?: unknown } | null, group_access?: { access_level?: unknown } | null } } | undefined
    if (typeof body?.id !== 'number' || typeof body.path_with_namespace !== 'string') return { kind: 'unavailable', detail: 'GitLab answered a project without id or path' }
    // Another project's role is no answer (a cache in front of GitLab that mixed answers up).
    if (!answersAsked(asked, body.id)) return { kind: 'unavailable', detail: `GitLab answered project ${body.id} for ${asked}` }
    const level = (v: unknown): number => typeof v === 'number' ? v : 0
    const accessLevel = Math.max(level(body.permissions?.project_access?.access_level), level(body.permissions?.group_access?.access_level))
    return { kind: 'found', id: body.id, path: body.path_with_namespace, accessLevel }
  }

  const lookupUser = async (header: Readonly<Record<string, string>>, signal: AbortSignal): Promise<UserLookup | null> => {
    try {
      const answer = await get('user', header, USER_ENDPOINT, signal)
      const body = answer.body as { id?: unknown, username?: unknown } | undefined
      if (answer.status !== 200 || typeof body?.id !== 'number') return null
      return typeof body.username === 'string' ? { id: body.id, username: body.username } : { id: body.id }
    } catch {
      return null
    }
  }

  const lookupGroup = async (fullPath: string, header: LookupCredential): Promise<GroupLookup> => {
    let answer: GitlabAnswer
    try {
      answer = await get(`groups/${apiSegment(fullPath)}?with_projects=false`, header, GROUP_ENDPOINT)
    } catch (err) {
      return { kind: 'unavailable', detail: (err as Error).message }
    }
    // GitLab answers 404 for a group the caller may not see.
    if (answer.status === 401 || answer.status === 403 || answer.status === 404) return { kind: 'not_found' }
    const body = answer.body as { id?: unknown, full_path?: unknown } | undefined
    const id = body?.id
    if (answer.status !== 200 || typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) return { kind: 'unavailable', detail: `GitLab answered ${answer.status} without a group id` }
    return { kind: 'found', id, path: typeof body?.full_path === 'string' ? body.full_path : fullPath }
  }

  return {
    hasServiceToken: api.hasServiceToken,
    group: lookupGroup,
    async project (idSegment, header, cacheKey, client) {
      if (cacheKey === null) return await lookupProject(idSegment, header)
      return await projects.get(projectCacheKey(cacheKey, idSegment), async signal => await lookupProject(idSegment, header, signal), client)
    },
    async user (header, cacheKey, client) {
      return await users.get(cacheKey, async signal => await lookupUser(header, signal), client)
    },
    async signedIn (header, client) {
      // Not shared, not kept: given up with the request's client all the same.
      return await shareLoad(client, async signal => {
        try {
          const answer = await get('user', header, USER_ENDPOINT, signal)
          if (answer.status === 401) return false
          if (answer.status === 403) return 'refused'
          const body = answer.body as { id?: unknown } | undefined
          return answer.status === 200 && typeof body?.id === 'number' ? true : 'unavailable'
        } catch {
          return 'unavailable'
        }
      }, () => {}).pending
    },
    stats: () => api.stats(),
    async close () {
      if (options.client === undefined) await api.close()
    }
  }
}
