// What a fine-grained personal access token may do, as GitLab describes it to the token itself:
// `GET /api/v4/personal_access_tokens/self` (lib/api/personal_access_tokens/self_information.rb)
// answers the token's record (API::Entities::PersonalAccessToken), with `granular: true` and
// `granular_scopes` for a fine-grained token. Where `self` leaves the scopes out (it did before it
// presented them as `GET /personal_access_tokens/:id` does), the token's id is asked once more.
// GitLab answers both only to a fine-grained token holding `read_personal_access_token` (User
// boundary); for one without it, the operator's registration by token hash decides
// (src/graphql/token-registry.ts). docs/graphql-tokens.md has the versions and the shape.
//
// A token GitLab knows but will not describe (403 to `self`, or a fine-grained record whose
// scopes neither route shows) and that no registration names is refused, 403
// GRAPHQL_TOKEN_SCOPES_HIDDEN: passing it would let a fine-grained token walk around the
// enforcement by lacking one permission. The refusal is not kept, so a permission granted or a
// registration made later counts at once. A legacy token may always read itself, so a 403 from
// `self` is a fine-grained token or one GitLab refuses anyway (a blocked user).
//
// A legacy token is `legacy` with GitLab's scope names (`api`, `read_api`, ...), which the
// configuration API applies as GitLab's API does (src/admin/token-scope.ts): a legacy PAT
// (project and group access tokens are PATs too) from `self`'s `scopes`; a token `self` does
// not know (401, 404) may be an OAuth token, which Doorkeeper's `GET /oauth/token/info`
// (beside the API, under the relative URL root; docs/api/oauth2.md) describes to its bearer
// with `scope` (and the alias `scopes`). GitLab's enforcement at /api/graphql passes them all:
// GitLab applies their scopes itself.
//
// A token neither route knows (401 from both) is `refused`: GitLab refuses the request too.
// Anything else (a record without readable scopes, another status from token info) is `other`:
// GitLab did not say what the token may do. GitLab unreachable is a 503 and an answer the gate
// cannot read a 502: never an allow on a doubt.

import { GateError, errors, type ErrorCode } from '../errors.ts'
import { GitlabUnavailable, type GitlabAnswer, type GitlabClient } from '../gitlab/client.ts'
import { createLoaderCache, tokenKey, type Clock } from '../identity/cache.ts'
import type { Waiter } from '../waiters.ts'
import type { TokenRegistry } from './token-registry.ts'

export const SCOPE_ACCESSES = ['personal_projects', 'all_memberships', 'selected_memberships', 'user', 'instance'] as const
export type ScopeAccess = typeof SCOPE_ACCESSES[number]

export interface GranularScope {
  readonly access: ScopeAccess
  /** The gate's catalog names (catalog/graphql-permissions.json), mapped from GitLab's. */
  readonly permissions: readonly string[]
  /** `selected_memberships`: the selected project, or null. */
  readonly projectId: number | null
  /** `selected_memberships`: the selected group, or null. */
  readonly groupId: number | null
}

export type TokenScopes =
  | { readonly kind: 'fine_grained', readonly userId: number | null, readonly scopes: readonly GranularScope[] }
  /** A legacy PAT (`self`) or an OAuth token (`/oauth/token/info`): GitLab's scope names. */
  | { readonly kind: 'legacy', readonly scopes: readonly string[] }
  /** Neither `self` nor `/oauth/token/info` knows the token (401): GitLab refuses it. */
  | { readonly kind: 'refused' }
  /** GitLab accepts the token or may, but did not say what it may do. */
  | { readonly kind: 'other' }

/** A fine-grained token's scopes. */
export type FineGrainedScopes = Extract<TokenScopes, { kind: 'fine_grained' }>

export interface TokenScopeResolver {
  /**
   * `client`: the request's (none: one that never goes); a lookup every client waiting for has
   * left is given up, rejecting with LookupDropped (src/waiters.ts).
   */
  scopesOf (token: string, client?: Waiter): Promise<TokenScopes>
}

export interface TokenScopeResolverOptions {
  readonly gitlab: GitlabClient
  /** How long an answer is kept. Default 30 s: a revoked token or a changed scope counts within it. */
  readonly ttlMs?: number
  /** Most tokens kept. Default 10,000. */
  readonly max?: number
  readonly clock?: Clock
  /**
   * GitLab's permission names that the gate's catalog spells differently: GitLab name → catalog
   * names. Names not listed are taken as they are (docs/graphql-tokens.md#permission-names).
   */
  readonly permissionAliases?: Readonly<Record<string, readonly string[]>>
  /**
   * Registrations by token hash (src/graphql/token-registry.ts), read when GitLab does not show
   * a token's scopes to the token itself.
   */
  readonly registry?: TokenRegistry
}

/** Counter labels of the client (`job_token_gate_gitlab_requests_total{endpoint}`). */
export const TOKEN_SELF_ENDPOINT = 'token_self'
export const TOKEN_BY_ID_ENDPOINT = 'token_by_id'
export const OAUTH_TOKEN_INFO_ENDPOINT = 'oauth_token_info'

/** A lookup failure: `detail` goes to logs, the answer says the table's message. */
export function lookupError (code: ErrorCode, detail: string, cause?: unknown): GateError {
  return new GateError(code, detail, { publicMessage: errors[code].message, ...(cause === undefined ? {} : { cause }) })
}

const OTHER: TokenScopes = Object.freeze({ kind: 'other' })
const REFUSED: TokenScopes = Object.freeze({ kind: 'refused' })

export function createTokenScopeResolver (options: TokenScopeResolverOptions): TokenScopeResolver {
  const { gitlab } = options
  const aliases = options.permissionAliases ?? {}
  const mapPermission = (name: string): readonly string[] => Object.hasOwn(aliases, name) ? aliases[name]! : [name]
  const { registry } = options
  // Failures are not kept: an outage or an unreadable answer is asked again on the next request.
  const cache = createLoaderCache<TokenScopes>({
    max: options.max ?? 10_000,
    ttlMs: options.ttlMs ?? 30_000,
    ...(options.clock === undefined ? {} : { clock: options.clock })
  })
  // A registration changed: what was cached from the old one must not outlive it.
  options.registry?.onChange(() => { cache.clear() })

  const ask = async (token: string, path: string, endpoint: string, signal: AbortSignal, header: 'private-token' | 'bearer' = 'private-token'): Promise<GitlabAnswer> => {
    try {
      return await gitlab.get(path, { endpoint, as: header === 'bearer' ? { authorization: `Bearer ${token}` } : { 'private-token': token }, signal })
    } catch (err) {
      if (err instanceof GitlabUnavailable) throw lookupError('GRAPHQL_TOKEN_LOOKUP_UNAVAILABLE', `GET ${path} failed: ${err.reason}`, err)
      throw err
    }
  }

  /** A number: GitLab refused the token (401, 403 or 404; it will refuse it on the request too, or decide itself). */
  const read = async (token: string, path: string, endpoint: string, signal: AbortSignal, header?: 'bearer'): Promise<Readonly<Record<string, unknown>> | number> => {
    const answer = await ask(token, path, endpoint, signal, header)
    const { status } = answer
    if (status === 401 || status === 403 || status === 404) return status
    if (status === 429 || status >= 500) throw lookupError('GRAPHQL_TOKEN_LOOKUP_UNAVAILABLE', `GET ${path} answered ${status}`)
    if (status !== 200) throw lookupError('GRAPHQL_TOKEN_LOOKUP_INVALID', `GET ${path} answered ${status}`)
    if (answer.body === undefined) throw lookupError('GRAPHQL_TOKEN_LOOKUP_INVALID', `GET ${path} answered something other than a JSON object`)
    return answer.body
  }

  // The answers a registration gave: kept only while the registry still answers from its file.
  const fromRegistry = new WeakSet<TokenScopes>()

  /** The operator's registration of a token GitLab does not describe; undefined when none. */
  const registered = (hash: string): TokenScopes | undefined => {
    const entry = registry?.get(hash)
    if (entry === undefined) return undefined
    const scopes = parseFineGrained({ user_id: entry.user_id, granular_scopes: entry.granular_scopes }, mapPermission)
    fromRegistry.add(scopes)
    return scopes
  }

  /** A token GitLab will not describe: its registration, else refused (never `other`). */
  const registeredOrHidden = (hash: string, why: string): TokenScopes => {
    const fromRegistry = registered(hash)
    if (fromRegistry !== undefined) return fromRegistry
    throw lookupError('GRAPHQL_TOKEN_SCOPES_HIDDEN', `${why}, and no registration names the token: grant it read_personal_access_token or register its SHA-256`)
  }

  const load = async (token: string, hash: string, signal: AbortSignal): Promise<TokenScopes> => {
    const self = await read(token, '/api/v4/personal_access_tokens/self', TOKEN_SELF_ENDPOINT, signal)
    // 401, 404: GitLab refuses the token, whatever is registered. 403: GitLab knows the token but
    // will not describe it (a fine-grained token without read_personal_access_token).
    if (self === 403) return registeredOrHidden(hash, 'GET /personal_access_tokens/self answered 403')
    // 401, 404: no personal access token; PRIVATE-TOKEN finds no other kind (auth_finders.rb).
    if (typeof self === 'number') return await oauth(token, signal)
    if (!isGranular(self)) return legacy(self.scopes)
    // Present but not a list: an answer the gate cannot read (502), not a hidden one.
    if (self.granular_scopes !== undefined) return parseFineGrained(self, mapPermission)
    // Older `self` answers leave the scopes out; `GET /personal_access_tokens/:id` presents them.
    const id = self.id
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw lookupError('GRAPHQL_TOKEN_LOOKUP_INVALID', 'GET /personal_access_tokens/self answered a fine-grained token without scopes or id')
    const byId = await read(token, `/api/v4/personal_access_tokens/${id}`, TOKEN_BY_ID_ENDPOINT, signal)
    // Revoked in between: GitLab refuses it on the request too.
    if (byId === 401) return REFUSED
    if (typeof byId !== 'number' && byId.granular_scopes !== undefined) return parseFineGrained({ ...byId, user_id: byId.user_id ?? self.user_id }, mapPermission)
    // A fine-grained token whose scopes neither route shows (403 without the permission, 404 where
    // the route does not exist, a record without them): hidden, as a 403 from `self` is.
    return registeredOrHidden(hash, `GitLab did not show the scopes of fine-grained token ${id} (GET /personal_access_tokens/${id} answered ${typeof byId === 'number' ? byId : 'a record without granular_scopes'})`)
  }

  /** An OAuth token's scopes, as Doorkeeper's token info shows them to the token itself. */
  const oauth = async (token: string, signal: AbortSignal): Promise<TokenScopes> => {
    const info = await read(token, '/oauth/token/info', OAUTH_TOKEN_INFO_ENDPOINT, signal, 'bearer')
    if (info === 401) return REFUSED
    if (typeof info === 'number') return OTHER
    // `scope` is the list (an older Doorkeeper: a space-separated string); `scopes` its alias.
    return legacy(info.scope ?? info.scopes)
  }

  return {
    async scopesOf (token, client) {
      const hash = tokenKey(token)
      const scopes = await cache.get(hash, async signal => await load(token, hash, signal), client)
      // Kept from a registration whose file another process has written since (another gate on
      // the same file removed or narrowed it): the registry forgets its copy and the cache is
      // cleared (onChange), so the token is looked up again, as one never registered here.
      if (registry !== undefined && fromRegistry.has(scopes) && !registry.current()) return await cache.get(hash, async signal => await load(token, hash, signal), client)
      return scopes
    }
  }
}

/** A legacy token's scope names; `other` when GitLab's answer holds none the gate can read. */
function legacy (raw: unknown): TokenScopes {
  const names = typeof raw === 'string' ? raw.split(' ').filter(name => name !== '') : raw
  if (!Array.isArray(names) || !names.every(name => typeof name === 'string')) return OTHER
  return Object.freeze({ kind: 'legacy', scopes: Object.freeze([...names as string[]]) })
}

/** A fine-grained token: `granular: true`, or GitLab's placeholder scope `granular`. */
function isGranular (record: Readonly<Record<string, unknown>>): boolean {
  if (record.granular === true) return true
  if (record.granular === false) return false
  return Array.isArray(record.scopes) && record.scopes.includes('granular')
}

/** Reads a token record's `granular_scopes`; throws GRAPHQL_TOKEN_LOOKUP_INVALID on anything else. */
export function parseFineGrained (record: Readonly<Record<string, unknown>>, mapPermission: (gitlabName: string) => readonly string[] = name => [name]): FineGrainedScopes {
  const invalid = (why: string): GateError => lookupError('GRAPHQL_TOKEN_LOOKUP_INVALID', `fine-grained token record: ${why}`)
  const raw = record.granular_scopes
  if (!Array.isArray(raw)) throw invalid('granular_scopes is not a list')
  const scopes = raw.map((item: unknown, i): GranularScope => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw invalid(`granular_scopes[${i}] is not an object`)
    const s = item as Record<string, unknown>
    if (typeof s.access !== 'string' || !(SCOPE_ACCESSES as readonly string[]).includes(s.access)) throw invalid(`granular_scopes[${i}].access is not one of ${SCOPE_ACCESSES.join(', ')}`)
    if (!Array.isArray(s.permissions) || !s.permissions.every(p => typeof p === 'string')) throw invalid(`granular_scopes[${i}].permissions is not a list of names`)
    const id = (key: 'project_id' | 'group_id'): number | null => {
      const v = s[key]
      if (v === undefined || v === null) return null
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw invalid(`granular_scopes[${i}].${key} is not an id`)
      return v
    }
    const projectId = id('project_id')
    const groupId = id('group_id')
    // GitLab attaches a selected scope to one project or one group (its namespace), the others to
    // the user's namespace (personal projects) or to none: it exposes no id for those.
    if (s.access === 'selected_memberships' ? (projectId === null) === (groupId === null) : projectId !== null || groupId !== null) {
      throw invalid(`granular_scopes[${i}] (${s.access}) names ${projectId === null && groupId === null ? 'no' : 'an unexpected'} project or group`)
    }
    const permissions = [...new Set((s.permissions as string[]).flatMap(p => mapPermission(p)))]
    return Object.freeze({ access: s.access as ScopeAccess, permissions: Object.freeze(permissions), projectId, groupId })
  })
  const userId = typeof record.user_id === 'number' && Number.isSafeInteger(record.user_id) ? record.user_id : null
  return Object.freeze({ kind: 'fine_grained', userId, scopes: Object.freeze(scopes) })
}
