// What a fine-grained personal access token may do, as GitLab reports it to the token itself:
// `GET /api/v4/personal_access_tokens/self` (lib/api/personal_access_tokens/self_information.rb)
// answers the token's own record, with `granular: true` and `granular_scopes` for a
// fine-grained token (API::Entities::PersonalAccessToken, lib/api/entities/personal_access_token.rb).
// Where `self` leaves `granular_scopes` out (it did before GitLab presented it there with the
// same options as `GET /personal_access_tokens/:id`), the token's own id is asked once more.
// See docs/graphql-tokens.md for the versions and the shape.
//
// Anything else (a legacy PAT, OAuth, an unknown, expired or revoked token) is `other`: GitLab
// refuses or allows it itself, and the gate passes it on. GitLab unreachable is a 503 and an
// answer the gate cannot read a 502: never an allow on a doubt.

import { GateError, errors, type ErrorCode } from '../errors.ts'
import { GitlabUnavailable, type GitlabAnswer, type GitlabClient } from '../gitlab/client.ts'
import { createLoaderCache, tokenKey, type Clock } from '../identity/cache.ts'

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
  /** Legacy PAT, OAuth, unknown or invalid token: GitLab decides, the gate passes it. */
  | { readonly kind: 'other' }

export interface TokenScopeResolver {
  scopesOf (token: string): Promise<TokenScopes>
}

export interface TokenScopeResolverOptions {
  readonly gitlab: GitlabClient
  /** How long an answer is kept. Default 30 s: a revoked token or a changed scope counts within it. */
  readonly ttlMs?: number
  /** Most tokens kept. Default 10,000. */
  readonly max?: number
  readonly clock?: Clock
  /**
   * GitLab's permission identifier → the gate's catalog names. Default `gitlabToGatePermissions`
   * (src/graphql/permission-names.ts): identifiers it does not know are kept as they are.
   */
  readonly mapPermission?: (gitlabName: string) => readonly string[]
}

/** Counter labels of the client (`job_token_gate_gitlab_requests_total{endpoint}`). */
export const TOKEN_SELF_ENDPOINT = 'token_self'
export const TOKEN_BY_ID_ENDPOINT = 'token_by_id'

/** A lookup failure: `detail` goes to logs, the answer says the table's message. */
function lookupError (code: ErrorCode, detail: string, cause?: unknown): GateError {
  return new GateError(code, detail, { publicMessage: errors[code].message, ...(cause === undefined ? {} : { cause }) })
}

const OTHER: TokenScopes = Object.freeze({ kind: 'other' })

export function createTokenScopeResolver (options: TokenScopeResolverOptions): TokenScopeResolver {
  const { gitlab } = options
  const mapPermission = options.mapPermission ?? ((name: string) => [name])
  // Failures are not kept: an outage or an unreadable answer is asked again on the next request.
  const cache = createLoaderCache<TokenScopes>({
    max: options.max ?? 10_000,
    ttlMs: options.ttlMs ?? 30_000,
    ...(options.clock === undefined ? {} : { clock: options.clock })
  })

  const ask = async (token: string, path: string, endpoint: string): Promise<GitlabAnswer> => {
    try {
      return await gitlab.get(path, { endpoint, as: { 'private-token': token } })
    } catch (err) {
      if (err instanceof GitlabUnavailable) throw lookupError('GRAPHQL_TOKEN_LOOKUP_UNAVAILABLE', `GET ${path} failed: ${err.reason}`, err)
      throw err
    }
  }

  /** null: GitLab refused the token (it will refuse it on the request too). */
  const read = async (token: string, path: string, endpoint: string): Promise<Readonly<Record<string, unknown>> | null> => {
    const answer = await ask(token, path, endpoint)
    const { status } = answer
    if (status === 401 || status === 403 || status === 404) return null
    if (status === 429 || status >= 500) throw lookupError('GRAPHQL_TOKEN_LOOKUP_UNAVAILABLE', `GET ${path} answered ${status}`)
    if (status !== 200) throw lookupError('GRAPHQL_TOKEN_LOOKUP_INVALID', `GET ${path} answered ${status}`)
    if (answer.body === undefined) throw lookupError('GRAPHQL_TOKEN_LOOKUP_INVALID', `GET ${path} answered something other than a JSON object`)
    return answer.body
  }

  const load = async (token: string): Promise<TokenScopes> => {
    const self = await read(token, '/api/v4/personal_access_tokens/self', TOKEN_SELF_ENDPOINT)
    if (self === null) return OTHER
    if (!isGranular(self)) return OTHER
    let record = self
    if (!Array.isArray(self.granular_scopes)) {
      // Older `self` answers leave the scopes out; `GET /personal_access_tokens/:id` presents them.
      const id = self.id
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw lookupError('GRAPHQL_TOKEN_LOOKUP_INVALID', 'GET /personal_access_tokens/self answered a fine-grained token without scopes or id')
      const byId = await read(token, `/api/v4/personal_access_tokens/${id}`, TOKEN_BY_ID_ENDPOINT)
      if (byId === null || !Array.isArray(byId.granular_scopes)) throw lookupError('GRAPHQL_TOKEN_LOOKUP_INVALID', `GitLab did not show the scopes of fine-grained token ${id}`)
      record = byId
    }
    return parseFineGrained(record, mapPermission)
  }

  return {
    async scopesOf (token) {
      return await cache.get(tokenKey(token), async () => await load(token))
    }
  }
}

/** A fine-grained token: `granular: true`, or GitLab's placeholder scope `granular`. */
function isGranular (record: Readonly<Record<string, unknown>>): boolean {
  if (record.granular === true) return true
  if (record.granular === false) return false
  return Array.isArray(record.scopes) && record.scopes.includes('granular')
}

/** Reads a token record's `granular_scopes`; throws GRAPHQL_TOKEN_LOOKUP_INVALID on anything else. */
export function parseFineGrained (record: Readonly<Record<string, unknown>>, mapPermission: (gitlabName: string) => readonly string[] = name => [name]): Extract<TokenScopes, { kind: 'fine_grained' }> {
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
    const permissions = [...new Set((s.permissions as string[]).flatMap(p => mapPermission(p)))]
    return Object.freeze({ access: s.access as ScopeAccess, permissions: Object.freeze(permissions), projectId: id('project_id'), groupId: id('group_id') })
  })
  const userId = typeof record.user_id === 'number' && Number.isSafeInteger(record.user_id) ? record.user_id : null
  return Object.freeze({ kind: 'fine_grained', userId, scopes: Object.freeze(scopes) })
}
