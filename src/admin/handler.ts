// The configuration API's entry point on the API listener (docs/admin.md). server.ts asks it
// first, after canonicalization: requests for the gate's own endpoints are answered here and
// never reach GitLab (GitLab's own job_token_scope REST endpoints included, in every form Grape
// routes: rest.ts's matchAdminPath); everything else continues through the job-token stages.
// For GraphQL (`GET`/`POST /api/graphql`, with Rails' optional format) the body is read (up to
// a limit) to tell whose request it is (graphql.ts); a GitLab request continues with exactly
// the bytes that were read, followed by the rest of a larger body as it arrives (graphql-body.ts),
// once a fine-grained personal access token in it is allowed (GraphqlGuard, built by createGate
// from src/graphql/enforce.ts; docs/graphql.md).

import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { Kind, type DocumentNode } from 'graphql'
import type { Logger } from 'pino'
import { ANY_PACKAGE_FORMAT, type CatalogRoute } from '../catalog/types.ts'
import { errors, GateError, type ErrorCode } from '../errors.ts'
import type { GrantCache } from '../grants/cache.ts'
import type { InstanceSettings } from '../grants/model.ts'
import type { GrantStore } from '../grants/store.ts'
import { GrantsStoreUnavailableError } from '../grants/errors.ts'
import type { PolicyIndex } from '../catalog/policy-index.ts'
import { BodyReadAborted, readUpTo, type BodyBudget } from '../read-body.ts'
import { loggedPath } from '../text.ts'
import type { CanonicalRequest } from '../routing/canonical.ts'
import type { GitlabClient as GitlabApi } from '../gitlab/client.ts'
import { createGitlabClient, findCaller, userToken } from './auth.ts'
import { classifyParams, executeGraphql, mapKeys, readGraphqlParams, type GraphqlHttpRequest, type GraphqlParams } from './graphql.ts'
import { budgetRefusal, bytesNameTokenParams, completeMultipartParts, decideOverLimit, namesTokenParams, readGraphqlBody } from './graphql-body.ts'
import { parseMultipartBoundary } from '../identity/body-scan.ts'
import { headerLines, type HeaderSource } from '../identity/credentials.ts'
import { handleRest, holdsAdminPathOutsideRoot, matchAdminPath, TokenPermissionMissing, type TokenPermissionCheck } from './rest.ts'
import { checkModelRegistryMutations } from './model-registry.ts'
import { checkPackageDeletes } from './package-deletes.ts'
import { createUserRoleCheck, type ProjectOfRoute, type SessionAnswer, type UserRoleCheck } from './roles.ts'
import { AdminError, createAdminService, type ProjectAccess } from './service.ts'
import { INSUFFICIENT_SCOPE_DESCRIPTION, scopeRefusal, TokenScopeInsufficient, unknownScopeRefusal } from './token-scope.ts'
import { ClientWaiter, LookupDropped, type Waiter } from '../waiters.ts'

/** Bodies the gate parses itself (REST JSON, GraphQL); larger ones are refused with 413. */
export const MAX_ADMIN_BODY_BYTES = 1 << 20

/** An answer of the configuration API: a JSON body (undefined: none), or a refusal. */
export type AdminAnswer =
  | { readonly kind: 'json', readonly status: number, readonly body: unknown, readonly headers?: Readonly<Record<string, string>> }
  | GateError
  | 'GATE_INTERNAL_ERROR'

/** What the enforcement of fine-grained personal access tokens answers (src/graphql/enforce.ts). */
export type GraphqlGuardResult =
  /**
   * `ciUserAccessToken`: the password of Basic under `gitlab-ci-token` is an access token GitLab
   * describes, decided here as GitLab's GraphQL takes it; not a job's token to the later stages.
   */
  | { readonly kind: 'pass' | 'allow', readonly ciUserAccessToken?: true }
  /** Answered by the gate with HTTP 200, as GitLab's GraphQL answers a refusal. */
  | { readonly kind: 'deny', readonly body: unknown }

/**
 * The enforcement of fine-grained personal access tokens at /api/graphql, built by createGate
 * (src/graphql/enforce.ts) and handed in, so admin/ does not import graphql/, which reads the
 * requests this module parses. Its methods throw a GateError when GitLab cannot be asked.
 */
export interface GraphqlGuard {
  /** A request for GitLab: the token found where GitLab reads one, and every reading checked. */
  enforce (request: HeaderSource, params: GraphqlParams, requestId: string, partial?: 'multipart' | 'opaque', client?: Waiter): Promise<GraphqlGuardResult>
  /** The gate's own operation, for a user caller's token, before the service runs. */
  decideGateOperation (token: string, document: DocumentNode, variables: Readonly<Record<string, unknown>>, operationName: string | undefined, requestId: string, client?: Waiter): Promise<GraphqlGuardResult>
}

/**
 * The operator's registrations of fine-grained tokens' scopes by token hash
 * (src/graphql/token-registry.ts, docs/graphql-tokens.md#registered-tokens), handed in by
 * createGate: `/api/v4/gate/graphql_token_scopes[/:sha256]`, the operator token only.
 */
export interface TokenRegistryEndpoint {
  /** Whether a path after `/api/v4` is the registry's. */
  owns (apiPath: string): boolean
  handle (request: { readonly method: string, readonly path: string, readonly caller: 'operator' | 'user' | 'none', readonly body?: unknown }): { readonly status: number, readonly body?: unknown, readonly headers?: Readonly<Record<string, string>> }
}

export interface AdminOptions {
  /** The gate's GitLab client (src/gitlab/client.ts), shared with identity; its owner closes it. */
  readonly gitlab: GitlabApi
  /**
   * The gate's one writer of JSON answers (src/gate/respond.ts). Handed in rather than imported,
   * so admin/ does not import gate/, which composes it.
   */
  readonly respond: (res: ServerResponse, requestId: string, answer: AdminAnswer, closeConnection?: boolean) => void
  readonly relativeUrlRoot: string
  readonly adminToken?: string
  readonly store: GrantStore
  readonly grants: GrantCache
  /** The project GitLab routes a full path to now (src/projects/facts.ts), null when it shows none: for the package rules' role check. */
  readonly projectOfPath?: (path: string, client?: Waiter) => Promise<number | null>
  /** The project a group or instance package route writes to (src/projects/finder.ts): for the package rules' role check. */
  readonly projectOfRoute?: ProjectOfRoute
  readonly logger: Logger
  readonly settings: InstanceSettings
  /** The current catalog's policies and routes (they change on reload). */
  readonly policies: () => PolicyIndex
  readonly routes: () => readonly CatalogRoute[]
  /** How long a user's Maintainer check is reused. Default 30 s. */
  readonly roleCacheTtlMs?: number
  /** Fine-grained personal access tokens at /api/graphql; absent: not enforced. */
  readonly graphql?: GraphqlGuard
  /**
   * Fine-grained personal access tokens on the REST endpoints: the endpoint's permission at the
   * path's project (rest.ts tokenPermissionOf), with the GraphQL enforcement's resolvers; absent:
   * not checked.
   */
  readonly tokenPermissions?: TokenPermissionCheck
  readonly tokenRegistry?: TokenRegistryEndpoint
  /** Counts each refusal by code (`job_token_gate_admin_refusals_total`). */
  readonly refused?: (code: ErrorCode) => void
  /** The gate's bound on body bytes held while clients send them (src/read-body.ts). */
  readonly bodyBudget?: BodyBudget
  /**
   * Whether refusals of the users' package rules are shadowed (GATE_MODE=shadow, or `packages` in
   * GATE_SHADOW_RESOURCES): GraphQL's model registry mutations and package deletes are then
   * logged and forwarded.
   */
  readonly shadowPackageRules?: boolean
}

export type AdminOutcome =
  | { readonly kind: 'answered' }
  /**
   * Not the gate's: continue. `body` replaces the request body when it was read to find out (the
   * same bytes). `ciUserAccessToken`: GraphQL's Basic `gitlab-ci-token:<password>` was decided as
   * the access token GitLab's GraphQL takes it for (GraphqlGuardResult): the job-token stages are
   * not to read that header as a job's token.
   */
  | { readonly kind: 'pass', readonly body: Readable | null, readonly ciUserAccessToken?: true }

export interface Admin {
  /** The Maintainer check of per package format rules for requests without a job token (roles.ts). */
  readonly roles: UserRoleCheck
  /**
   * Whether the gate must answer this request itself: a path of the configuration API (any
   * method, any spelling Grape routes) or GitLab's GraphQL endpoint, where allowlist mutations
   * are the gate's. The forward-auth endpoint, which cannot answer them, refuses these.
   */
  owns (canonical: CanonicalRequest): boolean
  handle (req: IncomingMessage, res: ServerResponse, canonical: CanonicalRequest, requestId: string, beforeBodyRead?: () => void): Promise<AdminOutcome>
}

const PASS: AdminOutcome = Object.freeze({ kind: 'pass', body: null })
const ANSWERED: AdminOutcome = Object.freeze({ kind: 'answered' })
const ADMIN_PATH_OUTSIDE_ROOT = '403 Forbidden - this path is outside the relative URL root the job token gate serves (GATE_RELATIVE_URL_ROOT): job token scope settings are answered under <root>/api/v4 only'
const GRAPHQL_OUTSIDE_ROOT = '403 Forbidden - this GraphQL path is outside the relative URL root the job token gate serves (GATE_RELATIVE_URL_ROOT), where its checks cannot run: send GraphQL requests to <root>/api/graphql'

/** The package formats the catalog knows, for validation and the GET answer. */
export function packageFormats (routes: readonly CatalogRoute[]): string[] {
  const formats = new Set<string>()
  for (const route of routes) if (route.packageFormat !== undefined && route.packageFormat !== ANY_PACKAGE_FORMAT) formats.add(route.packageFormat)
  return [...formats].sort()
}

/** A registration's path, `/gate/graphql_token_scopes/<the token's SHA-256>`: the hash. */
const REGISTRY_HASH = /^\/gate\/graphql_token_scopes\/([0-9A-Fa-f]{64})$/

/** The headers findGraphqlToken reads a token (or a job token) from. */
const TOKEN_HEADER_NAMES = ['private-token', 'authorization', 'job-token']

/**
 * Whether a large GraphQL request may carry an access token in its headers, its URL or the bytes
 * read: when none can, the bytes are not parsed for the enforcement (an upload without a token
 * costs what it did), and a token in a later part is cut by graphql-body.ts's guard.
 */
function mayCarryToken (request: HeaderSource, query: string, prefix: Buffer): boolean {
  // Percent escapes count in form bodies only (Rack reads a POST without a type as one).
  const contentType = String(request.headers['content-type'] ?? '').trim()
  const form = contentType === '' || /^application\/x-www-form-urlencoded\s*(?:[;,]|$)/i.test(contentType)
  return TOKEN_HEADER_NAMES.some(name => headerLines(request, name).length > 0) ||
    namesTokenParams(query, true) || bytesNameTokenParams(prefix, form)
}

/** The whole body; over `limit`, 413 ADMIN_BODY_TOO_LARGE; past the budget, 503 BODY_BUDGET_EXHAUSTED. */
async function readBody (req: IncomingMessage, limit: number, budget: BodyBudget | undefined): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0')
  if (declared > limit) throw new AdminError('ADMIN_BODY_TOO_LARGE')
  const read = await readUpTo(req, limit, budget).catch(budgetRefusal)
  if (!read.complete) throw new AdminError('ADMIN_BODY_TOO_LARGE')
  return Buffer.concat(read.chunks, read.size)
}

/**
 * Whether the operation GraphQL would run is a mutation: the one `operationName` names, else
 * any (a document with several and no name runs none).
 */
export function runsMutation (document: DocumentNode, operationName: string | undefined): boolean {
  return document.definitions.some(d => d.kind === Kind.OPERATION_DEFINITION && d.operation === 'mutation' &&
    (operationName === undefined || d.name?.value === operationName))
}

function parseParams (body: Buffer, contentType: string, query: URLSearchParams): Record<string, unknown> {
  // Without a prototype: `__proto__[]=x` is then a field like any other (refused as unknown).
  const params: Record<string, unknown> = Object.create(null) as Record<string, unknown>
  const addForm = (form: URLSearchParams, credentials: boolean): void => {
    for (const [key, value] of form) {
      // The caller's `?private_token=` (findCaller) is a credential, not a field of the request.
      if (credentials && key === 'private_token') continue
      if (key.endsWith('[]')) {
        const name = key.slice(0, -2)
        // Added to, not copied: copied for each value, 40,000 `job_token_policies[]` (a 1 MiB
        // form body) held the gate a minute.
        const list = params[name]
        if (Array.isArray(list)) list.push(value)
        else params[name] = [value]
      } else {
        params[key] = value
      }
    }
  }
  addForm(query, true)
  const text = body.toString('utf8')
  if (text.trim() === '') return params
  if (/^application\/x-www-form-urlencoded/i.test(contentType)) {
    addForm(new URLSearchParams(text), false)
    return params
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new AdminError('ADMIN_BAD_REQUEST', '400 Bad request - the request body is not valid JSON')
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new AdminError('ADMIN_BAD_REQUEST')
  return { ...params, ...json as Record<string, unknown> }
}

export function createAdmin (options: AdminOptions): Admin {
  const gitlab = createGitlabClient({ client: options.gitlab, ...(options.roleCacheTtlMs === undefined ? {} : { ttlMs: options.roleCacheTtlMs }) })
  let formatsFor: readonly CatalogRoute[] | null = null
  let formats: string[] = []
  const service = createAdminService({
    store: options.store,
    grants: options.grants,
    gitlab,
    logger: options.logger,
    settings: options.settings,
    policies: options.policies,
    packageFormats: () => {
      const routes = options.routes()
      if (routes !== formatsFor) {
        formatsFor = routes
        formats = packageFormats(routes)
      }
      return formats
    }
  })
  // GitLab's GraphQL answers at two paths (config/routes/api.rb): `/api/graphql` and `/api/glql`,
  // whose Glql::BaseController is a GraphqlController (its tokens, schema and mutations). Rails'
  // optional `(.:format)` is matched on the path as sent, where `[^/.?]+` takes an escaped dot:
  // `/api/graphql.%2E` runs GraphQL (format "."). The canonical path has that dot decoded, so a
  // format here is anything up to the next '/', dots included (`/api/graphql..`, which Rails
  // routes nowhere when sent so, is checked too: more requests checked, never fewer).
  const graphqlPath = new RegExp('^' + options.relativeUrlRoot.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '/api/(?:graphql|glql)(?:\\.[^/]+)?$')
  // The same paths under another root than the configured one: GitLab serves its GraphQL there
  // if that is its root (GATE_RELATIVE_URL_ROOT unset or wrong), where neither the fine-grained
  // tokens, nor its allowlist mutations, nor the package rules would be checked. Refused
  // (API_PATH_OUTSIDE_ROOT), whoever sends them.
  const graphqlPathAnyRoot = /\/api\/(?:graphql|glql)(?:\.[^/]+)?$/

  function send (res: ServerResponse, requestId: string, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
    options.respond(res, requestId, { kind: 'json', status, body, headers })
  }

  /** The token registry's endpoints: the caller first, so nobody else's body is read. */
  async function answerRegistry (registry: TokenRegistryEndpoint, req: IncomingMessage, res: ServerResponse, method: string, path: string, query: string, requestId: string, beforeBodyRead?: () => void): Promise<void> {
    const found = findCaller(req, query, options.adminToken)
    const caller = found.kind === 'operator' ? 'operator' : found.kind === 'none' ? 'none' : 'user'
    // The path's last segment should be a hash, but may be a token sent by mistake: never logged.
    const logged = path.replace(/^(\/gate\/graphql_token_scopes\/).+$/, '$1:sha256')
    let body: unknown
    try {
      if (caller === 'operator' && method === 'PUT') {
        beforeBodyRead?.()
        const bytes = await readBody(req, MAX_ADMIN_BODY_BYTES, options.bodyBudget)
        try {
          body = JSON.parse(bytes.toString('utf8'))
        } catch {
          throw new AdminError('ADMIN_BAD_REQUEST', '400 Bad request - the request body is not valid JSON')
        }
      }
      // A change of what a token may do is audited, as the configuration API's are: the hash (no
      // token: one pasted there is refused and never written), what was registered before and after.
      const hash = caller === 'operator' && (method === 'PUT' || method === 'DELETE') ? REGISTRY_HASH.exec(path)?.[1]?.toLowerCase() : undefined
      const prior = hash === undefined ? null : registry.handle({ method: 'GET', path, caller })
      const answer = registry.handle({ method, path, caller, body })
      send(res, requestId, answer.status, answer.body, answer.headers)
      options.logger.info({ request_id: requestId, method, path: logged, admin: true, status: answer.status }, 'token registry')
      if (hash !== undefined && answer.status >= 200 && answer.status < 300) {
        options.logger.info({
          audit: true,
          request_id: requestId,
          actor: { type: 'operator' },
          action: method === 'PUT' ? 'register_token_scopes' : 'remove_token_scopes',
          token_sha256: hash,
          before: prior?.status === 200 ? prior.body : null,
          after: method === 'PUT' ? answer.body : null
        }, 'fine-grained token registration changed')
      }
    } catch (err) {
      refuse(res, requestId, err, method, logged, !req.complete)
    }
  }

  /**
   * Answers a GateError (AdminError, GrantsError, ...) with its code; anything else is a 500. The
   * path is logged with a token-shaped segment as `[token]` (an `:id` pasted from the wrong variable).
   */
  function refuse (res: ServerResponse, requestId: string, err: unknown, method: string, path: string, closeConnection = false): void {
    // The client went away while its body was read: nobody to answer, and nothing of the gate's
    // failed. Handed on to the listener's lifecycle (src/gate/lifecycle.ts), which logs and
    // counts it as CLIENT_ABORTED at info, as it does for every other body read.
    // So is one whose lookups were given up, its client gone (src/waiters.ts).
    if (err instanceof BodyReadAborted || err instanceof LookupDropped) throw err
    if (!(err instanceof GateError)) {
      options.logger.error({ request_id: requestId, err: { message: (err as Error).message, stack: (err as Error).stack } }, 'configuration API failed')
    }
    const answer = err instanceof GateError ? err : 'GATE_INTERNAL_ERROR'
    const code = typeof answer === 'string' ? answer : answer.code
    // The store's cause (a Redis ACL's NOPERM naming the command, a key of another type), for the log only.
    const storeError = err instanceof GrantsStoreUnavailableError ? { store_error: err.message } : {}
    options.logger.info({ request_id: requestId, method, path: loggedPath(path), admin: true, reason: code, status: errors[code].status, ...storeError }, 'configuration API refused')
    options.refused?.(code)
    options.respond(res, requestId, answer, closeConnection)
  }

  /**
   * The enforcement of fine-grained tokens on a request for GitLab: null when answered here (a
   * refusal, as GitLab's GraphQL answers one, or a failure to decide), else the verdict to go on
   * with.
   */
  async function guardVerdict (guard: GraphqlGuard, req: IncomingMessage, res: ServerResponse, canonical: { readonly method: string, readonly path: string }, params: GraphqlParams, requestId: string, closeConnection: boolean, partial?: 'multipart' | 'opaque'): Promise<Exclude<GraphqlGuardResult, { kind: 'deny' }> | null> {
    try {
      const verdict = await guard.enforce(req, params, requestId, partial, new ClientWaiter(res))
      if (verdict.kind !== 'deny') return verdict
      send(res, requestId, 200, verdict.body, closeConnection ? { connection: 'close' } : {})
    } catch (err) {
      refuse(res, requestId, err, canonical.method, canonical.path, closeConnection)
    }
    return null
  }

  /** The outcome that hands a request for GitLab on to the later stages. */
  function passOn (body: Readable | null, verdict: Exclude<GraphqlGuardResult, { kind: 'deny' }> | undefined): AdminOutcome {
    return verdict?.ciUserAccessToken === true ? { kind: 'pass', body, ciUserAccessToken: true } : { kind: 'pass', body }
  }

  /**
   * A token without what GitLab's API would want, 403 with GitLab's fields beside the gate's
   * `message`, `code` and request id; logged and counted as the other refusals. A fine-grained
   * token missing the endpoint's permission: `error: insufficient_granular_scope`,
   * `error_description` its sentence (lib/api/api_guard.rb). A legacy token without the scope:
   * `error: insufficient_scope`, `error_description`, `scope` (the scopes that would do) and the
   * WWW-Authenticate header as RFC 6750 section 3.1 writes it.
   */
  function refuseTokenScope (res: ServerResponse, requestId: string, err: TokenPermissionMissing | TokenScopeInsufficient, method: string, path: string, closeConnection: boolean): void {
    const fineGrained = err instanceof TokenPermissionMissing
    options.logger.info({ request_id: requestId, method, path: loggedPath(path), admin: true, reason: err.code, status: err.status, ...(fineGrained ? { permission: err.permission } : { scope: err.scope }) }, 'configuration API refused')
    options.refused?.(err.code)
    const fields = fineGrained
      ? { error: 'insufficient_granular_scope', error_description: err.message }
      : { error: 'insufficient_scope', error_description: INSUFFICIENT_SCOPE_DESCRIPTION, scope: err.scope }
    const headers: Record<string, string> = fineGrained ? {} : { 'www-authenticate': `Bearer error="insufficient_scope", error_description="${INSUFFICIENT_SCOPE_DESCRIPTION}", scope="${err.scope}"` }
    if (closeConnection) headers.connection = 'close'
    options.respond(res, requestId, { kind: 'json', status: err.status, body: { message: err.message, ...fields, code: err.code, request_id: requestId }, headers })
  }

  const roles = createUserRoleCheck(gitlab, options.grants, options.projectOfPath, options.projectOfRoute, options.settings.unknownProject)

  /** Refusals of the users' package rules that shadowed package rules log and forward. */
  const SHADOWED: ReadonlySet<string> = new Set(['PACKAGE_MAINTAINER_ONLY', 'PACKAGE_PROJECT_UNCERTAIN', 'ROLE_CHECK_UNAVAILABLE', 'PROJECT_LOOKUP_FAILED'])

  /**
   * The users' package rules on GitLab's GraphQL mutations that write or delete packages: the
   * model registry's (model-registry.ts) and the package deletes (package-deletes.ts). True when
   * refused here, false to go on (shadowed refusals are logged and go on).
   */
  async function packageRulesAnswered (req: IncomingMessage, res: ServerResponse, canonical: { readonly method: string, readonly path: string }, params: GraphqlParams, requestId: string, closeConnection: boolean): Promise<boolean> {
    let refusal: GateError | null
    // Whom the request's cookies sign in is asked once, for every project path either checks.
    const session: SessionAnswer = {}
    const client = new ClientWaiter(res)
    try {
      refusal = await checkModelRegistryMutations(roles, req, params, session, client) ?? await checkPackageDeletes(roles, options.gitlab, req, params, session, client)
    } catch (err) {
      refusal = err instanceof GateError ? err : null
      if (refusal === null) throw err
    }
    if (refusal === null) return false
    if (options.shadowPackageRules === true && SHADOWED.has(refusal.code)) {
      options.logger.info({ request_id: requestId, method: canonical.method, path: loggedPath(canonical.path), graphql: true, decision: 'would_deny', reason: refusal.code }, 'package mutation would be refused')
      return false
    }
    refuse(res, requestId, refusal, canonical.method, canonical.path, closeConnection)
    return true
  }

  return {
    roles,
    owns (canonical) {
      if (canonical.kind === 'api') return matchAdminPath(canonical.method, canonical.apiPath) !== null || options.tokenRegistry?.owns(canonical.apiPath) === true
      return canonical.kind === 'other' && (graphqlPathAnyRoot.test(canonical.path) || holdsAdminPathOutsideRoot(canonical.path))
    },
    async handle (req, res, canonical, requestId, beforeBodyRead) {
      if (canonical.kind === 'rejected') return PASS
      if (canonical.kind === 'other') {
        // The allowlist's REST endpoints under another root, where GitLab's own would answer.
        if (holdsAdminPathOutsideRoot(canonical.path)) {
          refuse(res, requestId, new AdminError('API_PATH_OUTSIDE_ROOT', ADMIN_PATH_OUTSIDE_ROOT), canonical.method, canonical.path, !req.complete)
          return ANSWERED
        }
        // Rails routes GET and POST /api/graphql and /api/glql with an optional format (`/api/graphql.json`).
        if ((canonical.method !== 'POST' && canonical.method !== 'GET') || !graphqlPathAnyRoot.test(canonical.path)) return PASS
        if (!graphqlPath.test(canonical.path)) {
          refuse(res, requestId, new AdminError('API_PATH_OUTSIDE_ROOT', GRAPHQL_OUTSIDE_ROOT), canonical.method, canonical.path, !req.complete)
          return ANSWERED
        }
        // The body is read as sent whatever its Content-Encoding: nothing on GitLab's way to its
        // GraphQL inflates a request body (Workhorse only git's pack routes, CompressedJson a few
        // npm and error tracking routes), and Rack and Rails parse the bytes as they came.
        beforeBodyRead?.()
        // Read whole up to the limit; a larger body is decided from its first bytes and, when
        // it is GitLab's, streams on (graphql-body.ts).
        let read: Awaited<ReturnType<typeof readGraphqlBody>>
        try {
          read = await readGraphqlBody(req, MAX_ADMIN_BODY_BYTES, options.bodyBudget)
        } catch (err) {
          if (!(err instanceof AdminError)) throw err
          refuse(res, requestId, err, canonical.method, canonical.path, true)
          return ANSWERED
        }
        if (read.kind === 'over') {
          const contentType = String(req.headers['content-type'] ?? '')
          // The parameters the decided `map` names: a later part of one of these names must be a file.
          let lateMapKeys: readonly string[] = []
          let verdict: Exclude<GraphqlGuardResult, { kind: 'deny' }> | undefined
          if (options.graphql !== undefined && mayCarryToken(req, canonical.query, read.prefix)) {
            // Fine-grained tokens: decided before a byte is forwarded, from the URL and, for an
            // upload, the parts complete in the bytes read (graphql-body.ts guards the rest).
            const boundary = /^[ \t]*multipart\//i.test(contentType) ? parseMultipartBoundary(contentType) : null
            // The parts complete in the bytes read, closed as the body would be at the next delimiter.
            const known = boundary === null ? Buffer.alloc(0) : Buffer.concat([completeMultipartParts(read.prefix, boundary), Buffer.from(`--${boundary}--`, 'latin1')])
            const params = readGraphqlParams(known, { method: canonical.method, query: canonical.query, contentType, bodyReadable: boundary !== null })
            const guarded = await guardVerdict(options.graphql, req, res, canonical, params, requestId, true, boundary === null ? 'opaque' : 'multipart')
            if (guarded === null) return ANSWERED
            verdict = guarded
            lateMapKeys = mapKeys(params)
          }
          const over = decideOverLimit(read.prefix, req, { method: canonical.method, query: canonical.query, contentType }, MAX_ADMIN_BODY_BYTES, lateMapKeys)
          if (over.kind === 'stream') return passOn(over.body, verdict)
          refuse(res, requestId, over.error, canonical.method, canonical.path, true)
          return ANSWERED
        }
        const body = read.bytes
        const request: GraphqlHttpRequest = { method: canonical.method, query: canonical.query, contentType: String(req.headers['content-type'] ?? ''), bodyReadable: true }
        const params = readGraphqlParams(body, request)
        const classified = classifyParams(params, request)
        if (classified.kind === 'gitlab') {
          // Fine-grained personal access tokens: decided here, before GitLab runs anything.
          const verdict = options.graphql === undefined ? undefined : await guardVerdict(options.graphql, req, res, canonical, params, requestId, false)
          if (verdict === null) return ANSWERED
          // A project's package rules bind users' model registry mutations and package deletes.
          if (await packageRulesAnswered(req, res, canonical, params, requestId, false)) return ANSWERED
          return passOn(body.length === 0 ? null : Readable.from([body]), verdict)
        }
        if (classified.kind === 'refused') {
          refuse(res, requestId, new AdminError(classified.code, `400 Bad request - ${classified.message}`), canonical.method, canonical.path)
          return ANSWERED
        }
        const caller = findCaller(req, canonical.query, options.adminToken, new ClientWaiter(res))
        if (caller.kind === 'none' || caller.kind === 'job_token' || caller.kind === 'ambiguous') {
          refuse(res, requestId, new AdminError(caller.kind === 'none' ? 'ADMIN_UNAUTHENTICATED' : caller.kind === 'job_token' ? 'ADMIN_JOB_TOKEN_REFUSED' : 'CREDENTIAL_AMBIGUOUS'), canonical.method, canonical.path)
          return ANSWERED
        }
        try {
          if (caller.kind === 'user' && options.graphql !== undefined) {
            // A fine-grained token needs the catalog permission of each operation at its project.
            const verdict = await options.graphql.decideGateOperation(userToken(caller), classified.document, classified.variables ?? {}, classified.operationName, requestId, caller.client)
            if (verdict.kind === 'deny') {
              send(res, requestId, 200, verdict.body)
              return ANSWERED
            }
          }
          if (caller.kind === 'user' && options.tokenPermissions !== undefined) {
            // The fine-grained check above passes other tokens. A legacy token: GitLab's scopes,
            // mutations need api, queries api or read_api. A write by a token whose scopes GitLab
            // did not show is refused before it runs. One GitLab refuses runs on: its Maintainer
            // check answers ADMIN_UNAUTHENTICATED in each field, as before.
            const write = runsMutation(classified.document, classified.operationName)
            const scopes = await options.tokenPermissions.scopes(userToken(caller), caller.client)
            const refusal = scopeRefusal(scopes, write) ?? (scopes.kind === 'refused' ? null : unknownScopeRefusal(scopes, write))
            if (refusal !== null) {
              refuseTokenScope(res, requestId, refusal, canonical.method, canonical.path, false)
              return ANSWERED
            }
          }
          const tokens = options.tokenPermissions
          // A mutation's project and the groups above it are asked anew, once for the request (rest.ts).
          const fresh = runsMutation(classified.document, classified.operationName) ? new Map<string, Promise<unknown>>() : undefined
          const confirm = caller.kind === 'user' && tokens !== undefined
            ? async (access: ProjectAccess, permission: string): Promise<void> => {
              let verdict: Awaited<ReturnType<typeof tokens.check>>
              try {
                verdict = await tokens.check(userToken(caller), permission, String(access.projectId), fresh, caller.client)
              } catch (err) {
                // GitLab not answering the lookup: the field's error names it, as the service's do.
                if (err instanceof GateError && !(err instanceof AdminError)) throw new AdminError(err.code, err.message)
                throw err
              }
              if (verdict.kind === 'missing') throw new AdminError('GRAPHQL_PERMISSION_MISSING', verdict.message)
            }
            : undefined
          send(res, requestId, 200, await executeGraphql(service, classified, caller, requestId, confirm))
        } catch (err) {
          refuse(res, requestId, err, canonical.method, canonical.path, false)
        }
        return ANSWERED
      }

      if (options.tokenRegistry?.owns(canonical.apiPath) === true) {
        await answerRegistry(options.tokenRegistry, req, res, canonical.method, canonical.apiPath, canonical.query, requestId, beforeBodyRead)
        return ANSWERED
      }
      const m = matchAdminPath(canonical.method, canonical.apiPath)
      if (m === null) return PASS
      if (m.kind === 'options') {
        // As Grape answers OPTIONS: the path's methods, no body, no credential needed.
        send(res, requestId, 204, undefined, { allow: m.allow })
        return ANSWERED
      }
      const query = new URLSearchParams(canonical.query)
      const caller = findCaller(req, canonical.query, options.adminToken, new ClientWaiter(res))
      let bodyRead = false
      try {
        // Shape first, so an unknown path or method answers without asking GitLab.
        if (m.kind === 'not_found') throw new AdminError('ADMIN_NOT_FOUND')
        if (m.kind === 'method_not_allowed') throw new AdminError('ADMIN_METHOD_NOT_ALLOWED', undefined, [], { allow: m.allow })
        const answer = await handleRest(service, {
          method: canonical.method,
          endpoint: m.endpoint,
          idSegment: m.idSegment,
          ...(m.target === undefined ? {} : { target: m.target }),
          query,
          caller,
          requestId,
          params: async () => {
            beforeBodyRead?.()
            bodyRead = true
            return parseParams(await readBody(req, MAX_ADMIN_BODY_BYTES, options.bodyBudget), String(req.headers['content-type'] ?? ''), query)
          }
        }, options.tokenPermissions)
        send(res, requestId, answer.status, answer.body, answer.headers)
        options.logger.debug({ request_id: requestId, method: canonical.method, path: loggedPath(canonical.apiPath), admin: true, status: answer.status }, 'configuration API')
      } catch (err) {
        // A body left unread is not drained: close the connection after the answer.
        const unread = !bodyRead && (req.headers['content-length'] ?? '0') !== '0' && !req.complete
        if (err instanceof TokenPermissionMissing || err instanceof TokenScopeInsufficient) {
          refuseTokenScope(res, requestId, err, canonical.method, canonical.apiPath, unread)
          return ANSWERED
        }
        refuse(res, requestId, err, canonical.method, canonical.apiPath, unread || (err instanceof AdminError && (err.code === 'ADMIN_BODY_TOO_LARGE' || err.code === 'BODY_BUDGET_EXHAUSTED')))
      }
      return ANSWERED
    }
  }
}
