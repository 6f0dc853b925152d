// GitLab's scope rules for legacy user tokens on the configuration API. GitLab's REST API takes
// `api` for any request and `read_api` for GET and HEAD only (lib/api/api.rb:
// `allow_access_with_scope :api`, `allow_access_with_scope :read_api, if: -> (request) {
// request.get? || request.head? }`); its GraphQL mutations need `api`
// (Mutations::BaseMutation.authorization_scopes), its queries `api` or `read_api`. The gate
// answers these endpoints itself, so it applies the same rules: a Maintainer's `read_api` token
// reads the allowlist but never changes it. Fine-grained tokens have their own checks (rest.ts).
//
// A token whose scopes GitLab did not show the gate is refused for writes (fail closed), after
// the Maintainer check, so a token GitLab refuses is still answered 401.

import { AdminError } from './service.ts'

/** What the configuration API knows of a user token's scopes (createGate reads them from GitLab). */
export type UserTokenScopes =
  | { readonly kind: 'fine_grained' }
  /** A legacy PAT (project and group access tokens included) or an OAuth token: GitLab's scope names. */
  | { readonly kind: 'legacy', readonly scopes: readonly string[] }
  /** GitLab refuses the token (its Maintainer check answers 401). */
  | { readonly kind: 'refused' }
  /** GitLab did not say what the token may do. */
  | { readonly kind: 'unknown' }

/** GitLab's answer's wording (lib/api/api_guard.rb, RFC 6750 section 3.1). */
export const INSUFFICIENT_SCOPE_DESCRIPTION = 'The request requires higher privileges than provided by the access token.'

/** The scopes that allow a write or a read, as GitLab's `scope` field lists them. */
export function allowedScopes (write: boolean): readonly string[] {
  return write ? ['api'] : ['api', 'read_api']
}

/** A legacy token without a scope the request needs: 403 ADMIN_TOKEN_SCOPE_INSUFFICIENT. */
export class TokenScopeInsufficient extends AdminError {
  /** GitLab's `scope` field: the scopes that would allow the request, space-separated. */
  readonly scope: string
  constructor (write: boolean, known: boolean) {
    const scope = allowedScopes(write).join(' ')
    super('ADMIN_TOKEN_SCOPE_INSUFFICIENT', known
      ? `403 Forbidden - insufficient_scope: this request needs an access token with the ${write ? 'api scope' : 'api or read_api scope'}`
      : `403 Forbidden - insufficient_scope: this request needs an access token with the api scope, and GitLab did not show the gate this token's scopes`)
    this.scope = scope
  }
}

/**
 * The refusal a user token's scopes earn before the Maintainer check, or null: a legacy token
 * without a scope that allows the request. Fine-grained, refused and unknown tokens: null here.
 */
export function scopeRefusal (scopes: UserTokenScopes, write: boolean): TokenScopeInsufficient | null {
  if (scopes.kind !== 'legacy') return null
  return allowedScopes(write).some(s => scopes.scopes.includes(s)) ? null : new TokenScopeInsufficient(write, true)
}

/** The refusal after the Maintainer check: a write by a token whose scopes GitLab did not show. */
export function unknownScopeRefusal (scopes: UserTokenScopes, write: boolean): TokenScopeInsufficient | null {
  return write && (scopes.kind === 'unknown' || scopes.kind === 'refused') ? new TokenScopeInsufficient(true, false) : null
}
