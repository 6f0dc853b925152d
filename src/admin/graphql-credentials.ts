// The access token of a GraphQL request, where GitLab's GraphqlController reads one: for the
// enforcement of fine-grained personal access tokens (src/graphql/enforce.ts) and the users'
// package rules on model registry mutations (model-registry.ts).

import { authorizationToken } from './auth.ts'
import type { GraphqlParams } from './graphql.ts'
import { decodeBasic, headerLines, jiraDvcsConnector, jiraRewrite, type HeaderSource } from '../identity/credentials.ts'
import { isJobTokenShape } from '../identity/token-shape.ts'

export type GraphqlToken =
  | { readonly kind: 'none' }
  /** A CI/CD job token: the job-token stages decide (GATE_NON_API_JOB_TOKENS). */
  | { readonly kind: 'job_token' }
  /** Two different credentials: GitLab's precedence could pick one the gate did not check. */
  | { readonly kind: 'ambiguous' }
  /**
   * `ciUser`: the token was read (too) as the password of Basic under `gitlab-ci-token`, which
   * GitLab's GraphQL takes as a personal access token and the job-token stages as a job's. Once
   * GitLab describes it as an access token, those stages are not to read it (enforce.ts).
   */
  | { readonly kind: 'token', readonly token: string, readonly ciUser?: true }

/** Parameters GitLab reads an access token from (lib/gitlab/auth/auth_finders.rb, Doorkeeper's access_token_methods). */
const TOKEN_PARAMS = ['private_token', 'access_token', 'bearer_token'] as const

/** The user name GitLab reads a job's token under in Basic (Gitlab::Auth::CI_JOB_USER). */
const CI_USER = 'gitlab-ci-token'

/**
 * The password of `Authorization: Basic gitlab-ci-token:<password>` when it is no job token by
 * its shape, else null. GitLab's GraphQL reads the password of Basic under any user name as a
 * personal access token (RequestAuthenticator#access_token, find_personal_access_token_from_http_basic_auth:
 * `/api/graphql` is an API request) and no job token at all, `gitlab-ci-token` included.
 */
function ciUserPassword (authorization: string): string | null {
  const m = /^\s*Basic\s+(\S(?:.*\S)?)\s*$/is.exec(authorization)
  if (m === null) return null
  const { user, password } = decodeBasic(m[1]!)
  return user === CI_USER && password !== '' && !isJobTokenShape(password) ? password : null
}

/**
 * The access token of a GraphQL request, where GitLab's GraphqlController can read one: the
 * `PRIVATE-TOKEN` header, `Authorization: Bearer`, the password of Basic under any user name
 * (`gitlab-ci-token` included, unless the password is shaped as a job's token), and the
 * `private_token`, `access_token` and `bearer_token` parameters of the URL or the body, in every
 * reading of them. Headers are read as Puma hands them to Rack (headerLines: any case,
 * `Private_Token` too, every line). A job token anywhere (`JOB-TOKEN`, `job_token`, a `glcbt-`
 * token, Basic's user name) leaves the request to the job-token stages. Reads only what
 * classification already parsed.
 */
export function findGraphqlToken (request: HeaderSource, params: GraphqlParams): GraphqlToken {
  const found = new Set<string>()
  let jobToken = headerLines(request, 'job-token').length > 0
  for (const line of headerLines(request, 'private-token')) {
    const token = line.trim()
    if (token !== '') found.add(token)
  }
  // Puma joins repeated Authorization lines into one value that neither line's reading is.
  const authorizations = headerLines(request, 'authorization')
  if (authorizations.length > 1) return { kind: 'ambiguous' }
  // Gitlab::Jira::Middleware hands GitLab the header rewritten (`token glpat-...` as Bearer):
  // both readings are read, and a token the rewrite changes is two tokens.
  const readings = authorizations.length === 1 && jiraDvcsConnector(request) ? [authorizations[0]!, jiraRewrite(authorizations[0]!)] : authorizations
  let ciUser: string | null = null
  for (const reading of readings) {
    const authorization = authorizationToken(reading)
    if (authorization?.kind === 'job_token') {
      const password = ciUserPassword(reading)
      if (password === null) jobToken = true
      else found.add(ciUser = password)
    } else if (authorization !== null && authorization.token !== '') found.add(authorization.token)
  }
  for (const merged of params.readings) {
    if (merged.job_token !== undefined) jobToken = true
    for (const name of TOKEN_PARAMS) {
      const value = merged[name]
      // Rails' `.presence` of a scalar; a hash or list is no token GitLab can find.
      if (typeof value === 'string' && value.trim() !== '') found.add(value.trim())
      else if (typeof value === 'number') found.add(String(value))
    }
  }
  const tokens = [...found]
  if (tokens.some(isJobTokenShape)) jobToken = true
  if (jobToken) return tokens.some(t => !isJobTokenShape(t)) ? { kind: 'ambiguous' } : { kind: 'job_token' }
  if (tokens.length === 0) return { kind: 'none' }
  if (tokens.length > 1) return { kind: 'ambiguous' }
  return ciUser === null ? { kind: 'token', token: tokens[0]! } : { kind: 'token', token: tokens[0]!, ciUser: true }
}
