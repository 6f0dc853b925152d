// The request path as a list of named stages (canonicalize → check headers → match route →
// identify → user roles → resolve grants → decide → package rules), each returning "continue",
// "forward now" with its verdict and reason, or a deny with a reason code. Stages never write
// the verdict: runStages records what the deciding stage returned, with that stage's name. The
// same stages serve the proxy and the forward-auth endpoint; only what happens after them differs.

import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import { errors, GateError, type ErrorCode, type Reason } from '../errors.ts'
import type { GrantCache } from '../grants/cache.ts'
import { GrantsError, GrantsStoreUnavailableError } from '../grants/errors.ts'
import { mayNameProject, namesProjectTooLong, rootNamespaceOf, type InstanceSettings, type StoredGrants } from '../grants/model.ts'
import { NO_PARAMS, type BodyParams, type ForwardBody, type IdentityOutcome, type IdentityStage } from '../identity/stage.ts'
import type { Credential } from '../identity/credentials.ts'
import type { UserRoleCheck } from '../admin/roles.ts'
import type { JobIdentity } from '../identity/types.ts'
import { decide, jobProjectName, NAMESPACE_UNREAD, notAllowlistedMessage, opensInternalProject, shortPath, type AllowReason, type Decision, type NamespacePolicies } from '../policy/decide.ts'
import { cookieHeader, CREDENTIAL_HEADERS, decodeBasic, decodeFormComponent, headerLines, normalizeParamName, OVERRIDE_METHODS, queryPairs } from '../identity/credentials.ts'
import { checkPackageRules } from '../policy/package-check.ts'
import { connectionDropsDecisionHeader, queryWithout } from '../proxy/forward.ts'
import type { PolicyIndex } from '../catalog/policy-index.ts'
import type { Found, ProjectFinder } from '../projects/finder.ts'
import { LookupDropped, type Waiter } from '../waiters.ts'
import { conanSearchOf, conanSingleSearchPathOf, groupReadingsOf, mavenVirtualRegistryOf, packageReadGroupOf, servesEveryListedProject } from '../projects/lookup.ts'
import type { ProjectFacts, ProjectFactsLookup } from '../projects/facts.ts'
import { accessedProject } from '../routing/accessed.ts'
import { isFixedRunnerJobRoute, isRunnerJobRoute } from '../routing/runner-routes.ts'
import { MAX_WEB_DELETE_READINGS, uncataloguedPackageWrite, webModelRegistryDelete, webModelRegistryDeleteOutsideRoot } from '../routing/package-fallback.ts'
import { apiPathsIn, holdsApiSegments, type CanonicalRequest } from '../routing/canonical.ts'
import { conanSearchKind, type CatalogRoute, type PackageDeleteWhen } from '../catalog/types.ts'
import type { RouteMatch, Router } from '../routing/router.ts'

/** What the stages need from the process: built once by createGate, replaced whole on reload. */
export interface Engine {
  readonly router: Router
  readonly canonicalize: (method: string, target: string) => CanonicalRequest
  readonly policies: PolicyIndex
  readonly settings: InstanceSettings
  readonly grants: GrantCache
  readonly identity: IdentityStage
  /** Per package format rules for users: requests without a job token, and the session beside one (src/admin/roles.ts). */
  readonly userRoles?: UserRoleCheck
  /** Finds the accessed project of group, instance and job routes (src/projects/); required by `unresolvedProject: 'resolve'`. */
  readonly projects?: ProjectFinder
  /** The accessed project's visibility, features and short path (src/projects/facts.ts), for decisions that need them. */
  readonly projectFacts?: ProjectFactsLookup
  /** The loaded catalog's version (readiness, metrics, reload answers). */
  readonly catalogVersion: string
  readonly options: {
    readonly mode: 'enforce' | 'shadow'
    readonly shadowResources: readonly string[]
    readonly nonApiJobTokens: 'forward' | 'deny'
    /** A job token on an /api/v4 route that takes none: stripped and forwarded anonymously (default), or refused. */
    readonly jobTokenOnOtherRoutes?: 'anonymous' | 'refuse'
    readonly unresolvedProject: 'resolve' | 'defer' | 'deny'
    /** GitLab's relative URL root (GATE_RELATIVE_URL_ROOT), for its web UI's paths; default none. */
    readonly relativeUrlRoot?: string
  }
}

/** How the request ended up, for logs and metrics; `reason` is a stable code. */
export type Verdict = 'allow' | 'deny' | 'would_deny' | 'deferred' | 'no_job_token' | 'error'

/**
 * Who decided, as the decision log's `stage` names it: a stage of STAGES, or a step of the
 * listeners around them (`forward_auth`: the decision endpoint's own checks; `forward`: the
 * upstream or the request body failed, or the client went away, while forwarding).
 */
export type StageName = PipelineStage | 'forward_auth' | 'forward'

/** The stages of STAGES, in order. */
export type PipelineStage = 'canonicalize' | 'check_headers' | 'match_route' | 'identify' | 'user_roles' | 'resolve_grants' | 'decide' | 'package_rules'

export interface Deny {
  readonly kind: 'deny'
  readonly code: ErrorCode
  readonly status: number
  readonly message: string
  readonly headers?: Readonly<Record<string, string>>
  readonly missingPolicies?: readonly string[]
  /** Path and body errors are never shadowed: they are answered in every mode. */
  readonly always?: boolean
  /**
   * Also say the message as `error`: npm prints a refused request's `error` field and nothing of
   * `message`, so without it an npm user sees only "403 Forbidden" (set on npm routes).
   */
  readonly echoAsError?: boolean
}

export interface Exchange {
  readonly method: string
  readonly target: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: readonly string[]
  /** The request body: null for forward-auth (no body) or once consumed. */
  body: Readable | null
  /**
   * The request's canonical form, computed once by the listener (the configuration API and the
   * forward-auth checks read it first); the canonicalize stage refuses it or accepts it.
   */
  readonly requested: CanonicalRequest
  canonical: Extract<CanonicalRequest, { kind: 'api' | 'other' }> | null
  match: RouteMatch | null
  /** What to forward: the inspected bytes, the guarded multipart stream or the request itself. */
  forwardBody: ForwardBody | null
  identity: JobIdentity | null
  /** The credentials of a request without a job token, for the user roles stage. */
  userCredentials: readonly Credential[] | null
  /** The names of the body's parameters, as the identify stage read them (null: not read). */
  bodyParams: BodyParams
  accessedProjectId: number | null
  /** The accessed project's grants, read once by decide for decide and the package rules. */
  grants: StoredGrants | null
  /** The decision, written by runStages (and by the listener after forwarding), never by a stage. */
  verdict: Verdict
  reason: Reason
  /** The stage that decided; null before any did. */
  stage: StageName | null
  missingPolicies: readonly string[]
  /** Called before the body is read, for `Expect: 100-continue`. */
  readonly beforeBodyRead?: () => void
  /** Whether what is forwarded can differ from what came (the proxy: yes; forward-auth: no). */
  readonly rewritable: boolean
  /**
   * Forward-auth: the request has a body the gate cannot see that GitLab may read parameters from
   * (a form, JSON or multipart body), credentials among them. The proxy sees every body: false.
   */
  bodyHidden: boolean
  /** Lower-case names of headers not to forward (a stripped job token). */
  droppedHeaders: ReadonlySet<string>
  /**
   * GraphQL: the configuration API decided the password of Basic `gitlab-ci-token:<password>` as
   * the access token GitLab's GraphQL takes it for (src/admin/handler.ts): the identify stage does
   * not read that header as a job's token. It is forwarded as sent.
   */
  ciUserAccessToken: boolean
  /** The client connection (the request's socket), or null. */
  readonly connection: object | null
  /** The client waiting for the answer, for the job resolution and project lookups it waits for (gone once it went away); undefined: one that never goes. */
  readonly client: Waiter | undefined
  /** Why forwarding failed (the upstream's error, never a credential), for the decision line; else null. */
  upstreamError: string | null
  /**
   * Why the grants store could not answer (its error: a Redis ACL's NOPERM naming the command, a
   * key of another type, a timeout), for the decision line only; else null. The answer says 503
   * and no more.
   */
  storeError: string | null
}

const NO_MISSING_POLICIES: readonly string[] = Object.freeze([])
const NO_HEADERS: ReadonlySet<string> = new Set()

/** `requested` is the canonical form of (method, target), as the listener computed it. */
export function newExchange (method: string, target: string, headers: IncomingHttpHeaders, rawHeaders: readonly string[], body: Readable | null, requested: CanonicalRequest, beforeBodyRead?: () => void, rewritable = false, connection: object | null = null, client?: Waiter): Exchange {
  return {
    method, target, headers, rawHeaders, body, requested, canonical: null, match: null, forwardBody: null, identity: null, userCredentials: null, bodyParams: NO_PARAMS, accessedProjectId: null, grants: null,
    verdict: 'allow', reason: 'ALLOWED', stage: null, missingPolicies: NO_MISSING_POLICIES, beforeBodyRead, rewritable, bodyHidden: false, droppedHeaders: NO_HEADERS, ciUserAccessToken: false, connection, client, upstreamError: null, storeError: null
  }
}

/** Forward now, without the later stages: GitLab decides the rest. */
export interface Forward {
  readonly kind: 'forward'
  readonly verdict: 'allow' | 'deferred' | 'no_job_token'
  readonly reason: Reason
}

/** Continue, and allow with this reason unless a later stage denies. */
export interface Allowed {
  readonly kind: 'allowed'
  readonly reason: AllowReason
}

export type StageResult = 'continue' | Allowed | Forward | Deny
/** What a stage sees: the exchange without its decision, which only runStages writes. */
export type StageView = Omit<Exchange, 'verdict' | 'reason' | 'stage' | 'missingPolicies'>
type Stage = (x: StageView, engine: Engine) => StageResult | Promise<StageResult>

// Results without per-request data are shared constants: the hot path allocates none.
const forwardWith = (verdict: Forward['verdict'], reason: Reason): Forward => Object.freeze({ kind: 'forward', verdict, reason })
const NO_JOB_TOKEN = forwardWith('no_job_token', 'NO_JOB_TOKEN')
const NON_API_PATH = forwardWith('deferred', 'NON_API_PATH')
const RUNNER_JOB_ROUTE = forwardWith('deferred', 'RUNNER_JOB_ROUTE')
const PROJECT_NOT_IN_URL = forwardWith('deferred', 'PROJECT_NOT_IN_URL')
const NO_PROJECT = forwardWith('deferred', 'NO_PROJECT')
const SELF_ACCESS = forwardWith('allow', 'SELF_ACCESS')
const UNKNOWN_PROJECT_ALLOWED = forwardWith('allow', 'UNKNOWN_PROJECT_ALLOWED')
const allowedBy = new Map<AllowReason, Allowed>()
function allowed (reason: AllowReason): Allowed {
  let result = allowedBy.get(reason)
  if (result === undefined) allowedBy.set(reason, result = Object.freeze({ kind: 'allowed', reason }))
  return result
}

/** A deny with the table's status and message; `extra` overrides them. */
export function denyOf (code: ErrorCode, extra: Partial<Omit<Deny, 'kind' | 'code'>> = {}): Deny {
  return { kind: 'deny', code, status: errors[code].status, message: errors[code].message, ...extra }
}

const canonicalizeStage: Stage = (x) => {
  const canonical = x.requested
  if (canonical.kind === 'rejected') return denyOf(canonical.code, { always: true })
  x.canonical = canonical
  return 'continue'
}

// A header the decision reads must reach GitLab as read: `Connection` may not name one, since
// hop-by-hop headers are dropped on the way upstream.
const checkHeadersStage: Stage = (x) => {
  const dropped = connectionDropsDecisionHeader(x.headers.connection, CREDENTIAL_HEADERS)
  if (dropped === null) return 'continue'
  return denyOf('CONNECTION_DROPS_DECISION_HEADER', { always: true, message: `${errors.CONNECTION_DROPS_DECISION_HEADER.message} (${dropped})` })
}

const matchRouteStage: Stage = (x, engine) => {
  const canonical = x.canonical!
  if (canonical.kind !== 'api') return 'continue'
  x.match = engine.router.matchRequest(canonical)
  // GitLab checks the job's token on these itself, whatever else the request holds: passed on
  // as sent, body unread.
  if (x.match === null && isFixedRunnerJobRoute(canonical.method, canonical.apiPath)) {
    x.forwardBody = x.body === null ? null : { kind: 'stream', stream: x.body, guarded: false }
    return RUNNER_JOB_ROUTE
  }
  return 'continue'
}

/** The request's headers without Authorization, in any spelling Puma reads as it. */
function withoutAuthorization (headers: IncomingHttpHeaders, rawHeaders: readonly string[]): { headers: IncomingHttpHeaders, rawHeaders: string[] } {
  const isAuthorization = (name: string): boolean => name.toLowerCase().replaceAll('_', '-') === 'authorization'
  const kept: IncomingHttpHeaders = {}
  for (const name in headers) if (!isAuthorization(name)) kept[name] = headers[name]
  const raw: string[] = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (!isAuthorization(rawHeaders[i]!)) raw.push(rawHeaders[i]!, rawHeaders[i + 1]!)
  return { headers: kept, rawHeaders: raw }
}

// Find the credential (headers, query, body) and resolve the job behind a job token:
// src/identity/stage.ts does both, and hands back the body to forward. Hot path: without a
// promise when no body is read and the token's job is cached.
const identifyStage: Stage = (x, engine) => {
  const canonical = x.canonical!
  const seen = x.ciUserAccessToken ? withoutAuthorization(x.headers, x.rawHeaders) : x
  const outcome = engine.identity.run({
    canonical,
    route: x.match?.route ?? null,
    headers: seen.headers,
    rawHeaders: seen.rawHeaders,
    connection: x.connection,
    client: x.client,
    body: x.body,
    beforeBodyRead: x.beforeBodyRead,
    // Rack::MethodOverride applies to a POST only: other requests skip the header walk entirely.
    methodOverride: canonical.kind === 'api' && canonical.method === 'POST' ? (method: string) => routeAs(x, engine, canonical, method) : undefined,
    // A path outside the root that holds /api/v4, where GitLab may serve its API (API_PATH_OUTSIDE_ROOT), too.
    api: canonical.kind === 'api' || (canonical.kind === 'other' && holdsApiSegments(canonical.path)),
    // The users' package rules hold these too (userRolesStage): a credential they cannot see in a
    // streamed body is refused there, as on the catalog's package writes.
    // Asked only where no catalog route matched, so made only where none did or a POST's override
    // may leave none: the matched GET of the hot path allocates nothing here.
    uncataloguedPackageWrite: canonical.kind === 'api' && engine.userRoles !== undefined && (x.match === null || canonical.method === 'POST') ? (method: string) => uncataloguedPackageWrite(method === 'HEAD' ? 'GET' : method, canonical.apiPath) !== null : undefined
  })
  return outcome instanceof Promise ? outcome.then(o => identified(x, engine, o)) : identified(x, engine, outcome)
}

function identified (x: StageView, engine: Engine, outcome: IdentityOutcome): StageResult | Promise<StageResult> {
  const route = x.match?.route ?? null
  if (outcome.kind === 'deny') {
    const { answer } = outcome
    const deny: Deny = { kind: 'deny', code: outcome.code, status: answer.status, message: answer.body.message, headers: answer.headers, always: answer.status === 413 || answer.status === 400 || answer.status === 415 || outcome.code === 'BODY_BUDGET_EXHAUSTED' }
    // A shadowed refusal forwards the request as it came, body included (the bytes read to
    // inspect it, or the guard it streams through, whose own refusals stand in every mode): left
    // unset, a shadowed unknown token or ambiguous credential reached GitLab with an empty body.
    // A refusal answered here stops the guard reading a request that goes nowhere.
    const body = outcome.body
    if (body !== undefined) {
      if (deny.always !== true && shadowed(x, engine)) x.forwardBody = x.body === null ? null : body
      else if (body.kind === 'stream' && body.guarded) body.stream.destroy()
    }
    return deny
  }
  x.forwardBody = x.body === null ? null : outcome.body
  x.bodyParams = outcome.bodyParams
  if (outcome.kind === 'none') {
    // No job token: the user roles stage has the last word, then GitLab.
    x.userCredentials = outcome.credentials
    return 'continue'
  }
  x.identity = outcome.identity
  if (x.canonical!.kind === 'other') {
    // `/gitlab/api/v4/...` with no root configured (or another root): GitLab serves its API there
    // if that is its root, and every route would go undecided. Refused, whatever the setting.
    if (holdsApiSegments(x.canonical!.path)) return denyOf('API_PATH_OUTSIDE_ROOT')
    if (engine.options.nonApiJobTokens === 'deny') return denyOf('NON_API_JOB_TOKEN')
    // GitLab's web UI reads no job token, but signs in the session of the cookies beside it:
    // its model delete is held to the rule for that session all the same.
    const web = engine.userRoles === undefined ? null : webModelRegistryDelete(x.canonical!.method, x.canonical!.path, engine.options.relativeUrlRoot ?? '')
    if (web === null) return webDeleteOutsideRoot(engine, x.canonical!) ? denyOf('API_PATH_OUTSIDE_ROOT', { message: OUTSIDE_ROOT_PACKAGE_CHANGE }) : NON_API_PATH
    x.userCredentials = outcome.credentials.filter(c => !c.jobToken)
    return checkWebDelete(x, engine.userRoles!, web, NON_API_PATH)
  }
  // The catalog lists every route that accepts job tokens under the allowlist; GitLab does not
  // read one elsewhere but on the runner's job routes (a POST routed there after its override).
  if (route === null) {
    const canonical = x.canonical as Extract<CanonicalRequest, { kind: 'api' }>
    if (isRunnerJobRoute(canonical.method, canonical.apiPath)) return RUNNER_JOB_ROUTE
    const result = jobTokenOnOtherRoute(x, engine, outcome.token, outcome.credentials)
    return result === JOB_TOKEN_STRIPPED ? strippedPackageWrite(x, engine, outcome.credentials) : result
  }
  return 'continue'
}

const JOB_TOKEN_STRIPPED = forwardWith('no_job_token', 'JOB_TOKEN_STRIPPED')
/**
 * Where GitLab's personal access token and OAuth lookup reads (find_user_from_access_token:
 * `private_token`, PRIVATE-TOKEN, `access_token`, Bearer, `bearer_token`): a job token there
 * raises 401 on a route that takes no job token.
 */
const TOKEN_LOOKUP_PLACES = new Set(['bearer', 'header:private-token', 'query:private_token', 'query:access_token', 'query:bearer_token', 'body:private_token', 'body:access_token', 'body:bearer_token'])

/**
 * A job token on an /api/v4 route that takes none (lib/api/api_guard.rb: without
 * `job_token_allowed` the job token finders never run). GitLab ignores one in JOB-TOKEN,
 * `job_token` or `token` and runs the request anonymously; one where the personal/OAuth token
 * lookup reads gets 401. The gate does the same, and removes the token so that GitLab cannot
 * read it even on a route the catalog misses. A token in the body cannot be removed (the gate
 * forwards bodies as received), nor can anything be removed in forward-auth: refused there.
 */
function jobTokenOnOtherRoute (x: StageView, engine: Engine, token: string, credentials: readonly Credential[]): StageResult {
  if (engine.options.jobTokenOnOtherRoutes === 'refuse') return denyOf('ROUTE_NOT_FOR_JOB_TOKENS')
  if (credentials.some(c => TOKEN_LOOKUP_PLACES.has(c.where))) return denyOf('JOB_TOKEN_NOT_ACCEPTED')
  // A streamed body is checked only as it passes: a token may be in it, and bodies are not rewritten.
  const streamed = x.forwardBody?.kind === 'stream' && x.forwardBody.guarded
  if (streamed || credentials.some(c => c.where.startsWith('body:'))) return denyOf('JOB_TOKEN_IN_BODY')
  if (!x.rewritable) return denyOf('ROUTE_NOT_FOR_JOB_TOKENS')
  const canonical = x.canonical!
  const query = queryWithout(canonical.query, token, decodeFormComponent)
  const dropped = headersHolding(x.rawHeaders, token, credentials.some(readFromAuthorization))
  // Fail closed: what goes upstream must not hold the token in any reading the gate knows.
  if (query.includes(token) || decodeFormComponent(query).includes(token)) return denyOf('ROUTE_NOT_FOR_JOB_TOKENS')
  // Only a header GitLab reads a credential from may go: without another that holds the token
  // (`Content-Type: application/json; x=<token>`), GitLab reads the rest of the request otherwise
  // than the gate did (an untyped POST body as a form, its `private_token` and `_method` unseen).
  for (const name of dropped) if (!CREDENTIAL_HEADERS.has(name.replaceAll('_', '-'))) return denyOf('ROUTE_NOT_FOR_JOB_TOKENS')
  x.canonical = { ...canonical, query }
  x.droppedHeaders = dropped
  return JOB_TOKEN_STRIPPED
}

/**
 * A package write the catalog misses (an MLflow model registry change, an upload of a later
 * GitLab) whose job token was stripped: GitLab reads no job token there, but signs in the session
 * of the cookies beside it (find_user_from_warden, after the job token finders that return nothing
 * there), so the users' package rules bind that session as they would without the token.
 */
function strippedPackageWrite (x: StageView, engine: Engine, credentials: readonly Credential[]): StageResult | Promise<StageResult> {
  const canonical = x.canonical as Extract<CanonicalRequest, { kind: 'api' }>
  const match = engine.userRoles === undefined ? null : uncataloguedPackageWrite(canonical.method, canonical.apiPath)
  if (match === null) return JOB_TOKEN_STRIPPED
  x.userCredentials = credentials.filter(c => !c.jobToken)
  return checkUserRoles(x, engine.userRoles!, [match], JOB_TOKEN_STRIPPED)
}

/**
 * Whether the credential was read from Authorization (credentials.ts: Basic, Bearer, or a bare
 * token there). Rails decodes Basic from everything after the scheme, white space skipped, so
 * `Basic Z2l0bGF iLWNp...` is the job token to it though no word of it decodes to one: the
 * header is dropped by where the token was found, not by finding it again word by word.
 */
const readFromAuthorization = (c: Credential): boolean => c.source === 'basic' || c.source === 'bearer' || c.where === 'header:authorization'

/**
 * Lower-case names of the headers holding `token`, as sent or in decoded Basic credentials;
 * `inAuthorization`: the token was read from Authorization, which goes whatever its spelling.
 */
function headersHolding (rawHeaders: readonly string[], token: string, inAuthorization: boolean): ReadonlySet<string> {
  const names = new Set<string>()
  if (inAuthorization) names.add('authorization')
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase()
    const value = rawHeaders[i + 1]!
    if (value.includes(token)) names.add(name)
    else if (name === 'authorization' && value.split(/\s+/).some(word => { const { user, password } = decodeBasic(word); return (user + password).includes(token) })) names.add(name)
  }
  return names
}

/**
 * Rack::MethodOverride routes a POST as its `_method` or X-HTTP-Method-Override (found by the
 * identity stage): from here on the canonical method and the route, which every later stage and
 * the decision log read, are the ones GitLab routes. The request is forwarded as sent (x.method).
 */
function routeAs (x: StageView, engine: Engine, canonical: Extract<CanonicalRequest, { kind: 'api' }>, method: string): CatalogRoute | null {
  // HEAD is served by the GET route, as canonicalize() reads it.
  const routed = method === 'HEAD' ? 'GET' : method
  const routedAs = { ...canonical, method: routed }
  x.canonical = routedAs
  x.match = engine.router.matchRequest(routedAs)
  return x.match?.route ?? null
}

// Requests without a job token go to GitLab, which checks the user's own credential; a
// project's package rules also limit users' writes to its format to Maintainers
// (src/admin/roles.ts asks GitLab for the caller's role). A job token's request goes on to the
// job's decision, its package write's session first held to the same rule (sessionBesideJobToken).
// Hot path: synchronous unless a package route's rules must ask GitLab for the caller's role.
const userRolesStage: Stage = (x, engine) => {
  const credentials = x.userCredentials
  // A job token's request (on a route the catalog lists): the session beside it, if any.
  if (credentials === null) return x.identity === null || engine.userRoles === undefined ? 'continue' : sessionBesideJobToken(x, engine.userRoles)
  if (engine.userRoles === undefined) return NO_JOB_TOKEN
  const canonical = x.canonical!
  if (canonical.kind === 'other') {
    // GitLab's web UI deletes a registry model outside the API (package-fallback.ts).
    const matches = webModelRegistryDelete(canonical.method, canonical.path, engine.options.relativeUrlRoot ?? '')
    if (matches !== null) return checkWebDelete(x, engine.userRoles, matches, NO_JOB_TOKEN)
    const apiPaths = apiPathsIn(canonical.path)
    if (apiPaths.length > MAX_API_PATHS_OUTSIDE_ROOT) return denyOf('API_PATH_OUTSIDE_ROOT', { message: TOO_MANY_API_PATHS })
    return packageChangeOutsideRoot(engine, canonical.method, apiPaths) || webDeleteOutsideRoot(engine, canonical) ? denyOf('API_PATH_OUTSIDE_ROOT', { message: OUTSIDE_ROOT_PACKAGE_CHANGE }) : NO_JOB_TOKEN
  }
  // A package write the catalog misses is held to its format's rule all the same.
  const match = x.match ?? (canonical.kind === 'api' ? uncataloguedPackageWrite(canonical.method, canonical.apiPath) : null)
  // Reads are never held to a role (the check says so too): no promise and no header walk for them.
  if (match?.route.packageFormat !== undefined && match.route.packageOperation !== 'read') {
    if (namesConanProject(x)) return denyOf('CONAN_PROJECT_PARAMETER')
    // A route the catalog misses (the MLflow API's) may read credentials from a body forward-auth
    // hides; the catalog's own routes with such a body are refused after the stages (forward-auth.ts).
    return checkUserRoles(x, engine.userRoles, [runAs(x, match)], NO_JOB_TOKEN, false, x.match === null && x.bodyHidden)
  }
  return NO_JOB_TOKEN
}

const OUTSIDE_ROOT_PACKAGE_CHANGE = '403 Forbidden - this path is outside the API root the job token gate serves, where the package rules cannot be checked: send package writes and deletes under the API root'

/**
 * Most `/api/v4` segments of a path outside the root read for the package rules: each is matched
 * as an API path, for a POST under every method its override may give it, and a path of 8 KB
 * holding a few hundred (no token needed) cost the gate 100 ms of CPU. A GitLab root holds none;
 * a repository file's path in the web UI a few.
 */
export const MAX_API_PATHS_OUTSIDE_ROOT = 16
const TOO_MANY_API_PATHS = `403 Forbidden - this path is outside the API root the job token gate serves and holds /api/v4 more than ${MAX_API_PATHS_OUTSIDE_ROOT} times, where the package rules cannot be checked: send API requests under the API root`

/**
 * Whether a path outside the root that holds /api/v4 (where GitLab serves its API if its root is
 * not the gate's, API_PATH_OUTSIDE_ROOT) names a package write or delete after those segments
 * (`apiPaths`, apiPathsIn), as its method or any a POST's override may give it: the users'
 * package rules would go unchecked.
 */
function packageChangeOutsideRoot (engine: Engine, requestMethod: string, apiPaths: readonly string[]): boolean {
  const methods = requestMethod === 'POST' ? [...OVERRIDE_METHODS] : [requestMethod]
  return apiPaths.some(apiPath => methods.some(method => {
    const routed = method === 'HEAD' ? 'GET' : method
    const match = engine.router.matchRequest({ method: routed, path: apiPath, apiPath }) ?? uncataloguedPackageWrite(routed, apiPath)
    return match?.route.packageFormat !== undefined && match.route.packageOperation !== 'read'
  }))
}

/**
 * Whether a path outside a configured root is the web UI's model delete read without that root
 * (webModelRegistryDeleteOutsideRoot), where the users' package rules hold: GitLab runs it there if
 * the root is wrong, and answers it 404 if not.
 */
function webDeleteOutsideRoot (engine: Engine, canonical: Extract<CanonicalRequest, { kind: 'other' }>): boolean {
  return engine.userRoles !== undefined && webModelRegistryDeleteOutsideRoot(canonical.method, canonical.path, engine.options.relativeUrlRoot ?? '')
}

/**
 * The users' role check of the web UI's model delete, for the session of its cookies: every project
 * its path may name (webModelRegistryDelete), more than MAX_WEB_DELETE_READINGS refused before any
 * is asked of GitLab.
 */
function checkWebDelete (x: StageView, roles: UserRoleCheck, matches: readonly RouteMatch[], passed: Forward): StageResult | Promise<StageResult> {
  if (matches.length > MAX_WEB_DELETE_READINGS) return denyOf('WEB_MODEL_DELETE_TOO_DEEP')
  return checkUserRoles(x, roles, matches, passed, true)
}

/**
 * The users' role check of each match in turn, with the Cookie header GitLab's session is read
 * from, as it is forwarded (cookieHeader): the first refusal, else `passed`. `webSession`: the line
 * is GitLab's web UI's, which signs in a session its API refuses (roles.ts). `bodyHidden`: GitLab
 * may read a credential from a body the gate cannot see.
 */
async function checkUserRoles (x: StageView, roles: UserRoleCheck, matches: readonly RouteMatch[], passed: Forward, webSession = false, bodyHidden = false): Promise<StageResult> {
  const value = cookieHeader(x)
  const cookie = value === undefined ? {} : { cookie: value }
  // Whom the cookies sign in is asked once for every match.
  const session = {}
  for (const match of matches) {
    const refusal = await roles.check({ match, credentials: x.userCredentials!, ...cookie, webSession, bodyHidden, session, client: x.client })
    if (refusal !== null) return refusedBy(refusal)
  }
  return passed
}

/** The deny of a users' role check's refusal. */
function refusedBy (refusal: { code: ErrorCode, message?: string }): StageResult {
  return denyOf(refusal.code, refusal.message === undefined ? {} : { message: refusal.message })
}

// Hot path: synchronous unless a full path or a group or instance route's project must be looked
// up (cached lookups answer synchronously too), so most requests cost no promise here.
const resolveGrantsStage: Stage = (x, engine) => {
  const match = x.match!
  const identity = x.identity!
  const accessed = accessedProject(match)
  switch (accessed.kind) {
    case 'project_id':
      x.accessedProjectId = accessed.id
      return conanSearchKind(match.route) === 'project' ? conanProjectSearch(x, engine, identity) : 'continue'
    case 'project_path': {
      // Even the job's own path is asked of GitLab (cached GATE_PROJECT_LOOKUP_TTL_MS): the path
      // the identity carries was read when the job's project was last looked up (the namespace
      // cache, GATE_NAMESPACE_CACHE_TTL_MS), and after a rename another project may hold it now.
      // A path GitLab routes to the job's own project is self access in the decide stage.
      const resolved = resolvePath(x, engine, accessed.path, identity)
      if (conanSearchKind(match.route) !== 'project') return resolved
      const then = (result: StageResult): StageResult | Promise<StageResult> => result === 'continue' ? conanProjectSearch(x, engine, identity) : result
      return resolved instanceof Promise ? resolved.then(then) : then(resolved)
    }
    case 'job':
      // The job's own artifacts are self access; another job's project is not in the URL.
      if (accessed.jobId === identity.jobId) return SELF_ACCESS
      return findProject(x, engine, match, identity)
    case 'token_job':
      return SELF_ACCESS
    case 'unknown':
      // The instance search reads `q`, never an `id` (its search_project is nil).
      if (conanSearchKind(match.route) === 'instance') return conanInstanceSearch(x, engine, identity)
      if (namesConanProject(x)) return denyOf('CONAN_PROJECT_PARAMETER')
      return findProject(x, engine, match, identity)
  }
}

/**
 * Conan's instance search lists recipe names (`name/version@username/channel`) from the projects
 * its `q` reaches (src/projects/lookup.ts, conanSearchOf). Forwarded undecided, it named the
 * packages of projects that keep Conan reads from job tokens (`read: false`). A `q` naming a
 * username reads that project alone, and is decided as a Conan read of it, allowlist and package
 * rules; one without reads every project the job's user can read, which no lookup can list, nor
 * can the answer be sifted (a recipe's username need not name its project: a project's own Conan
 * API takes any, `_` included): refused. A `q` in the body, which Rack merges over the query's,
 * or one the gate cannot read for sure, is refused as well.
 */
function conanInstanceSearch (x: StageView, engine: Engine, identity: JobIdentity): StageResult | Promise<StageResult> {
  if (engine.options.unresolvedProject !== 'resolve' || engine.projects === undefined) return unresolved(engine)
  const q = conanSearchQuery(x)
  if (q === undefined) return NO_PROJECT
  if (q === null) return denyOf('CONAN_SEARCH_UNSCOPED')
  const search = conanSearchOf(q)
  switch (search.kind) {
    case 'nothing': return NO_PROJECT
    case 'every_project': return denyOf('CONAN_SEARCH_UNSCOPED')
    case 'project_path': return resolvePath(x, engine, search.path, identity)
  }
}

/**
 * A Conan search's `q` as Rack reads the request: undefined when absent (Grape answers 400), null
 * when the gate cannot tell it for sure (one in the body, which Rack merges over the query's, or a
 * body whose names it has not read; a name Rack reads as `q` that is not plainly `q`, such as `q[]`
 * or `%20q`; values that differ).
 */
function conanSearchQuery (x: StageView): string | null | undefined {
  if (x.bodyParams === null || x.bodyParams.has('q')) return null
  let q: string | undefined
  for (const [key, value] of queryPairs(x.canonical!.query)) {
    if (normalizeParamName(key) !== 'q') continue
    if (key !== 'q' || (q !== undefined && q !== value)) return null
    q = value
  }
  return q
}

/**
 * A project's Conan search (`/projects/:id/packages/conan/v1/conans/search?q=`) reads that project
 * in newer GitLab, but the releases whose SearchService looks a `q` holding `@` up as one package
 * (SinglePackageSearchService) read the project its username names instead, whatever the URL's:
 * decided on `:id` alone, a job's search from its own project listed the recipe of a project that
 * keeps Conan reads from job tokens, or does not allowlist the job. Such a username must name the
 * URL's project (or none: src/projects/lookup.ts, conanSingleSearchPathOf); a `q` the gate cannot
 * read for sure (in the body, which Rack merges over the query's, repeated, `q[]`) is refused.
 */
function conanProjectSearch (x: StageView, engine: Engine, identity: JobIdentity): StageResult | Promise<StageResult> {
  const q = conanSearchQuery(x)
  if (q === null) return denyOf('CONAN_SEARCH_OTHER_PROJECT')
  const path = q === undefined ? null : conanSingleSearchPathOf(q)
  if (path === null) return 'continue'
  if (namesProjectTooLong(path)) return denyOf('PROJECT_PATH_TOO_LONG')
  const projectId = x.accessedProjectId!
  const same = async (facts: ProjectFacts | undefined): Promise<StageResult> => {
    if (facts !== undefined && facts.id > 0) return facts.id === projectId ? 'continue' : denyOf('CONAN_SEARCH_OTHER_PROJECT')
    // Without the service token, the job's own private project is known by its path alone.
    if (projectId === identity.jobProjectId && path.toLowerCase() === identity.jobProjectPath.toLowerCase()) return 'continue'
    // GitLab showed the gate no project there (none, or one it does not see): as pathNotShown.
    if (engine.settings.unknownProject === 'allow' && await engine.grants.resolvePath(path) === null) return 'continue'
    return denyOf('CONAN_SEARCH_OTHER_PROJECT')
  }
  if (engine.projectFacts === undefined || !mayNameProject(path)) return same(undefined)
  const facts = engine.projectFacts.get(path, x.client)
  return facts instanceof Promise ? facts.then(same) : facts.id > 0 && facts.id === projectId ? 'continue' : same(facts)
}

/**
 * Conan's instance API takes its project from `params[:id]` whenever that is present
 * (lib/api/helpers/packages/conan/api_helpers.rb: package_scope, project), and its paths hold no
 * `:id`: an `id` in the query or the body, which Grape merges into params, makes GitLab act on
 * the project it names, not on the one the package username names and the gate looks up. True
 * where the request may carry one: a name Rack reads as `id` in the query or the body, or a body
 * whose names the gate has not read.
 */
function namesConanProject (x: StageView): boolean {
  if (x.match === null || x.match.route.projectFrom !== 'conan_username') return false
  if (x.bodyParams === null || x.bodyParams.has('id')) return true
  return queryPairs(x.canonical!.query).some(([key]) => normalizeParamName(key) === 'id')
}

// Hot path (warm: one cached lookup, no promise). A full path names the project GitLab routes it
// to now, as `find_project` resolves it: case-insensitively, and a moved project's old path while
// no project holds it (lib/api/helpers.rb, docs/gitlab-rules.md). Only GitLab knows that: the
// project lookup (src/projects/facts.ts, cached GATE_PROJECT_LOOKUP_TTL_MS) asks it with the
// service token. The store's path index is not an answer here: it holds the path a project had
// when it was last configured, and GitLab renames and transfers projects without telling the
// gate, so another project may hold that path now (and GitLab would serve that one).
function resolvePath (x: StageView, engine: Engine, path: string, identity: JobIdentity): StageResult | Promise<StageResult> {
  // A path too long to look up may still be a project's to GitLab: never "no project".
  if (namesProjectTooLong(path)) return denyOf('PROJECT_PATH_TOO_LONG')
  // find_project takes a string without `/` as nothing: no project, nothing to ask. Any other may
  // name a project, even one no project path is as written (mayNameProject): GitLab says which.
  if (engine.projectFacts === undefined || !mayNameProject(path)) return pathNotShown(engine, path, identity)
  const facts = engine.projectFacts.get(path, x.client)
  if (facts instanceof Promise) return facts.then(found => pathResolved(x, engine, path, identity, found))
  return pathResolved(x, engine, path, identity, facts)
}

function pathResolved (x: StageView, engine: Engine, path: string, identity: JobIdentity, facts: ProjectFacts): StageResult | Promise<StageResult> {
  // Asked by path, a project GitLab does not show has id 0.
  if (facts.id > 0) {
    x.accessedProjectId = facts.id
    return 'continue'
  }
  // Without the service token (the JWT resolver) GitLab shows the gate public projects only: the
  // job's own private project is then known by the path its signed token names, and by nothing else.
  if (!engine.projectFacts!.seesPrivate && path.toLowerCase() === identity.jobProjectPath.toLowerCase()) {
    x.accessedProjectId = identity.jobProjectId
    return 'continue'
  }
  return pathNotShown(engine, path, identity)
}

/**
 * GitLab showed the gate no project at this path (none there, or one its service token does not
 * see): as GitLab with an empty allowlist. With `unknownProject: 'allow'` such a path passes, unless
 * the store holds a project under it: that one may be there, unseen, and is not let through unchecked.
 */
async function pathNotShown (engine: Engine, path: string, identity: JobIdentity): Promise<StageResult> {
  if (engine.settings.unknownProject === 'allow' && await engine.grants.resolvePath(path) === null) return UNKNOWN_PROJECT_ALLOWED
  return denyOf('UNKNOWN_PROJECT', { message: notAllowlistedMessage(jobProjectName(identity), shortPath(path)) })
}

/**
 * Group, instance and job routes: the project GitLab's handler would find (src/projects/), then
 * decided exactly as a `/projects/:id` route, package rules included. No project: nothing the
 * gate guards exists, GitLab answers. A route no lookup can tell stays deferred.
 */
function findProject (x: StageView, engine: Engine, match: RouteMatch, identity: JobIdentity): StageResult | Promise<StageResult> {
  if (engine.options.unresolvedProject !== 'resolve' || engine.projects === undefined) return unresolved(engine)
  const found = engine.projects.find(match.route, match.params, identity, x.client)
  return found instanceof Promise ? found.then(f => foundProject(x, engine, match, f)) : foundProject(x, engine, match, found)
}

function foundProject (x: StageView, engine: Engine, match: RouteMatch, found: Found): StageResult | Promise<StageResult> {
  switch (found.kind) {
    case 'project':
      x.accessedProjectId = found.id
      if (found.listedIn !== undefined && servesEveryListedProject(match.route)) return listedPackageRead(engine, match.route, x.identity!, found.id, found.listedIn, x.client)
      return 'continue'
    case 'no_project':
      return NO_PROJECT
    case 'unresolved': {
      const group = packageReadGroupOf(match.route, match.params)
      // The job's own listings wait their turn as its lookups do (src/projects/slots.ts).
      const owner = String(x.identity!.jobId)
      if (group !== null) return groupPackageRead(engine, match.route, group, owner, x.client)
      const registry = mavenVirtualRegistryOf(match.route, match.params)
      return registry === null ? PROJECT_NOT_IN_URL : virtualRegistryRead(engine, match.route, registry, owner, x.client)
    }
    case 'uncertain':
      // GitLab's handler finds a project here: forwarding undecided would skip its rules.
      return denyOf('PACKAGE_PROJECT_UNCERTAIN')
  }
}

/**
 * A job's read of a format through a route that names a group but no project (PyPI's group files,
 * group metadata, the Terraform module registry's namespace routes): GitLab serves it from the
 * packages of any project under the group, and knows nothing of their package rules. Deferred
 * unchecked, it read packages of a format a project keeps from job tokens (`read: false`); refused
 * now where any project under the group does so, as that project's own routes are.
 */
async function groupPackageRead (engine: Engine, route: CatalogRoute, group: string, owner: string, waiter: Waiter | undefined): Promise<StageResult> {
  // `+10` is group 10 to the APIs whose `:id` Grape reads as an Integer first, and a path to the
  // others: the projects of every group it may name.
  const listings: Array<readonly number[]> = []
  for (const reading of route.accessedProject === 'group' ? groupReadingsOf(group) : [group]) {
    const found = await engine.projects!.groupProjects(reading, owner, waiter)
    if (found === 'too_many') return denyOf('PACKAGE_PROJECT_UNCERTAIN')
    if (found !== null) listings.push(found)
  }
  for (const projects of listings) {
    if (await anyKeepsFromJobs(engine, route, projects)) return readRefused(route, 'through this group: a project in it keeps them')
  }
  return PROJECT_NOT_IN_URL
}

/**
 * Whether any of the projects' package rules (but `except`'s) refuses the route to job tokens.
 * `projects` is a listing the project finder keeps (a group's, up to 1,000 projects): the grant
 * cache keeps the answer beside it (anyOf), as long as the project answers it was drawn from are
 * fresh and none of them is invalidated. Each read of a group once asked the grant cache for every
 * project in it, and a job naming groups whose projects were more than the cache holds (11 of
 * 1,000) had the store read for all of them on every request: about 3,000 Redis commands each.
 * The package rules read the route's format and operation alone, which name the question.
 */
async function anyKeepsFromJobs (engine: Engine, route: CatalogRoute, projects: readonly number[], except?: number): Promise<boolean> {
  const kind = `package_rules ${route.packageFormat ?? ''} ${route.packageOperation ?? ''} ${except ?? ''}`
  return await engine.grants.anyOf(projects, kind, (grants, id) => id !== except && !checkPackageRules(route, grants, id).allow)
}

/** PACKAGE_READ_DISABLED for a read served from projects besides the one decided; none is named: the job may not know it exists. */
const readRefused = (route: CatalogRoute, how: string): Deny =>
  denyOf('PACKAGE_READ_DISABLED', { message: `403 Forbidden - CI/CD job tokens may not read ${route.packageFormat!} packages ${how} from job tokens (job token permissions: package_registry.${route.packageFormat!}.read is false).` })

/**
 * npm's metadata of a name whose packages lie in several projects: GitLab lists the versions of
 * every one of them the job's user can read, while the request is decided on the project of the
 * newest. Only that project's package rules were checked, so the metadata of a project that keeps
 * npm reads from job tokens was read beside a newer package published elsewhere in the
 * namespace; the others' rules are checked too (the decided project's in the package_rules stage).
 * So is each other project's allowlist: GitLab lists a project's versions by the job user's role
 * (PackagesForUserFinder), whatever allowlist, so the job must be let in there as at the decided
 * project (decide stage), or be let read them by that project's own features.
 */
async function listedPackageRead (engine: Engine, route: CatalogRoute, identity: JobIdentity, decided: number, listedIn: readonly number[], waiter: Waiter | undefined): Promise<StageResult> {
  if (await anyKeepsFromJobs(engine, route, listedIn, decided)) return readRefused(route, 'of this name: its metadata lists a project that keeps them')
  for (const project of listedIn) {
    if (project === decided || project === identity.jobProjectId) continue
    if (!await jobLetIn(engine, route, identity, project, waiter)) return denyOf('PACKAGE_LISTED_PROJECT_NOT_ALLOWED')
  }
  return 'continue'
}

/** Whether the decision of the route at `projectId` lets the job in, as the decide stage makes it there. */
async function jobLetIn (engine: Engine, route: CatalogRoute, identity: JobIdentity, projectId: number, waiter: Waiter | undefined): Promise<boolean> {
  const found = engine.grants.get(projectId)
  const grants = found instanceof Promise ? await found : found
  const first = decide(route, identity, projectId, grants, engine.settings, engine.policies, undefined, NAMESPACE_UNREAD)
  if (first.allow) return true
  if (first.needsNamespace !== true && (first.needsFacts !== true || engine.projectFacts === undefined)) return false
  return (await decideAgain(engine, route, identity, projectId, grants, first, waiter)).allow
}

/**
 * A download through a Maven virtual registry: GitLab serves the file from the registry's local
 * upstreams first, projects and groups a Maintainer linked, with no user's permissions and none
 * of the package rules. Deferred unchecked, it read the Maven packages of a project that keeps
 * them from job tokens; refused now where any project the registry serves from does so.
 */
async function virtualRegistryRead (engine: Engine, route: CatalogRoute, registry: number, owner: string, waiter: Waiter | undefined): Promise<StageResult> {
  const projects = await engine.projects!.registryLocalProjects(registry, owner, waiter)
  if (projects === 'too_many') return denyOf('PACKAGE_PROJECT_UNCERTAIN')
  if (projects === null) return PROJECT_NOT_IN_URL
  const asRead = asMavenRead(route)
  if (await anyKeepsFromJobs(engine, asRead, projects)) return readRefused(asRead, 'through this virtual registry: a project among its local upstreams keeps them')
  return PROJECT_NOT_IN_URL
}

/** The route as a Maven read, whose package rules a virtual registry's local upstreams are held to. */
const mavenReadRoutes = new WeakMap<CatalogRoute, CatalogRoute>()
const asMavenRead = (route: CatalogRoute): CatalogRoute => derivedRoute(mavenReadRoutes, route, { packageFormat: 'maven', packageOperation: 'read' })

function unresolved (engine: Engine): StageResult {
  if (engine.options.unresolvedProject === 'deny') return denyOf('PROJECT_NOT_IN_URL')
  return PROJECT_NOT_IN_URL
}

// Hot path: a fresh grant cache entry and an allow cost no promise; only a deny may read more.
const decideStage: Stage = (x, engine) => {
  const projectId = x.accessedProjectId!
  // Self access needs no allowlist, but the package rules stage still needs the project's rules.
  if (projectId !== x.identity!.jobProjectId || x.match!.route.packageFormat !== undefined) {
    const grants = engine.grants.get(projectId)
    if (grants instanceof Promise) {
      return grants.then(read => {
        x.grants = read
        return decideOn(x, engine)
      })
    }
    x.grants = grants
  }
  return decideOn(x, engine)
}

function decideOn (x: StageView, engine: Engine): StageResult | Promise<StageResult> {
  const decision = decide(x.match!.route, x.identity!, x.accessedProjectId!, x.grants, engine.settings, engine.policies, undefined, NAMESPACE_UNREAD)
  if (decision.allow) return allowed(decision.reason)
  // A deny that only the project's facts could turn, facts cached (or not needed): decided again
  // without a promise. Anything to read awaits.
  const identity = x.identity!
  if (decision.needsNamespace !== true) {
    if (decision.needsFacts !== true || engine.projectFacts === undefined) return denyFrom(decision)
    const facts = engine.projectFacts.get(x.accessedProjectId!, x.client)
    if (!(facts instanceof Promise)) {
      const again = decide(x.match!.route, identity, x.accessedProjectId!, x.grants, engine.settings, engine.policies, facts, NAMESPACE_UNREAD)
      if (opensInternalProject(again, facts, x.grants, identity)) {
        const held = unlessExternal(engine, identity, x.grants, facts, again, x.client)
        return held instanceof Promise ? held.then(settled) : settled(held)
      }
      return again.allow ? allowed(again.reason) : denyFrom(again)
    }
    // The lookup started here is the one decideDeny awaits (its failure is that stage's error).
    return decideDeny(x, engine, decision, facts)
  }
  return decideDeny(x, engine, decision)
}

const denyFrom = (decision: Exclude<Decision, { allow: true }>): Deny =>
  denyOf(decision.reason, { message: decision.message, missingPolicies: decision.missingPolicies })
const settled = (decision: Decision): StageResult => decision.allow ? allowed(decision.reason) : denyFrom(decision)

/**
 * `allow` (opensInternalProject) unless the job's user is external: then the not-allowlisted deny
 * GitLab's find_project! gives. A user GitLab does not show the gate as one or the other (a
 * service token that cannot read all resources) is refused: JOB_USER_UNVERIFIED.
 */
function unlessExternal (engine: Engine, identity: JobIdentity, grants: StoredGrants | null, facts: ProjectFacts, allow: Decision, waiter: Waiter | undefined): Decision | Promise<Decision> {
  const judge = (external: boolean | null): Decision => {
    if (external === false) return allow
    if (external === null) throw new GateError('JOB_USER_UNVERIFIED')
    const project = facts.path ?? (grants === null ? `project #${facts.id}` : shortPath(grants.projectPath))
    return { allow: false, reason: grants === null ? 'UNKNOWN_PROJECT' : 'NOT_ALLOWLISTED', missingPolicies: [], message: notAllowlistedMessage(jobProjectName(identity), project) }
  }
  const found = engine.projectFacts!.userExternal(identity.userId, waiter)
  return found instanceof Promise ? found.then(judge) : judge(found)
}

/** A deny, decided again where the root namespace's setting or the project's facts could turn it. */
async function decideDeny (x: StageView, engine: Engine, first: Exclude<Decision, { allow: true }>, pendingFacts?: Promise<ProjectFacts>): Promise<StageResult> {
  const decision = await decideAgain(engine, x.match!.route, x.identity!, x.accessedProjectId!, x.grants, first, x.client, pendingFacts)
  if (decision.allow) return allowed(decision.reason)
  return denyFrom(decision)
}

/**
 * decideDeny's decision: the deny `first`, decided again with what could turn it. `waiter`: the
 * request's client, whose lookups are given up once it has gone (src/waiters.ts).
 */
async function decideAgain (engine: Engine, route: CatalogRoute, identity: JobIdentity, projectId: number, grants: StoredGrants | null, first: Exclude<Decision, { allow: true }>, waiter: Waiter | undefined, pendingFacts?: Promise<ProjectFacts>): Promise<Decision> {
  let decision: Decision = first
  // A fine-grained deny that the root namespace's job_token_policies_enabled could turn: decide
  // again with it (the grant cache, keyed by the first segment of the project's stored path; no
  // GitLab call). Allowed requests never read it. The stored path is the one the project had when
  // last written, and a transfer in GitLab moves it under another root: an allow that root gives
  // is made only once the root GitLab puts the project under now (the cached project lookup) says so.
  let namespace: NamespacePolicies = NAMESPACE_UNREAD
  if (decision.needsNamespace === true) {
    const storedRoot = rootNamespaceOf(grants!.projectPath)
    namespace = (await engine.grants.namespace(storedRoot))?.jobTokenPoliciesEnabled ?? null
    decision = decide(route, identity, projectId, grants, engine.settings, engine.policies, undefined, namespace)
    if (decision.allow && engine.projectFacts !== undefined) {
      const root = await rootNow(engine.projectFacts, projectId, waiter, pendingFacts)
      if (root !== storedRoot) {
        // Not shown to the gate: its root cannot be told, and the policies stay enforced.
        namespace = root === null ? true : (await engine.grants.namespace(root))?.jobTokenPoliciesEnabled ?? null
        decision = decide(route, identity, projectId, grants, engine.settings, engine.policies, undefined, namespace)
      }
    }
  }
  // A deny that a public or internal project could turn: decide again with the project's facts
  // (a cached GitLab lookup). Allowed requests never get here.
  let facts: ProjectFacts | undefined
  if (!decision.allow && decision.needsFacts === true && engine.projectFacts !== undefined) {
    const found = pendingFacts ?? engine.projectFacts.get(projectId, waiter)
    facts = found instanceof Promise ? await found : found
    decision = decide(route, identity, projectId, grants, engine.settings, engine.policies, facts, namespace)
    if (opensInternalProject(decision, facts, grants, identity)) decision = await unlessExternal(engine, identity, grants, facts, decision, waiter)
  }
  return decision
}

/** The root namespace (lower-cased) GitLab puts the project under now; null when GitLab does not show it to the gate. */
async function rootNow (lookup: ProjectFactsLookup, projectId: number, waiter: Waiter | undefined, pendingFacts?: Promise<ProjectFacts>): Promise<string | null> {
  const found = pendingFacts ?? lookup.get(projectId, waiter)
  const facts = found instanceof Promise ? await found : found
  return facts.fullPath === null ? null : rootNamespaceOf(facts.fullPath)
}

// Per package format rules (configuration API): after GitLab's decision, for every job token,
// self access included (the session of cookies beside a job token's write is held to the users'
// rule earlier, sessionBesideJobToken). Only package routes (catalog `packageFormat`) read the
// grants again.
const packageRulesStage: Stage = (x) => {
  if (x.match!.route.packageFormat === undefined) return 'continue'
  const route = runAs(x, x.match!).route
  const projectId = x.accessedProjectId!
  const verdict = checkPackageRules(route, x.grants, projectId)
  return verdict.allow ? 'continue' : denyOf(verdict.reason, { message: verdict.message })
}

/**
 * A job token's package write that carries cookies: GitLab reads a job token only where the route
 * does (Basic alone on Helm, Debian, RPM and other `authenticate_with` routes; Basic alone on
 * `job_token_allowed: :basic_auth`), and where it finds none there it signs in the session of the
 * cookies instead (api_guard.rb: `user_from_namespace_inheritable || user_from_warden`). The gate
 * reads a job token in every place, so that session is held to the users' rule as well, and as it
 * would be without the token: the project is the one the route names to that session too, and
 * the check comes before the job's decision, whose forwards undecided (a path GitLab shows the
 * gate no project at, with GATE_UNKNOWN_PROJECT=allow) once skipped it. A Developer's `JOB-TOKEN`
 * header beside their session once uploaded to Helm as the Developer where the project keeps
 * users' writes to Maintainers. Cookies that sign no one in change nothing.
 */
function sessionBesideJobToken (x: StageView, roles: UserRoleCheck): StageResult | Promise<StageResult> {
  if (x.match?.route.packageFormat === undefined) return 'continue'
  const match = runAs(x, x.match)
  if (match.route.packageOperation === 'read') return 'continue'
  const cookie = cookieHeader(x)
  if (cookie === undefined) return 'continue'
  return roles.check({ match, credentials: [], cookie, client: x.client }).then(refusal => refusal === null ? 'continue' : refusedBy(refusal))
}

/**
 * The match as GitLab runs it: a write it runs as a destroy on a header (npm's `Npm-Command:
 * deprecate`) is a delete, for the job's package rules and the users' alike.
 */
function runAs (x: StageView, match: RouteMatch): RouteMatch {
  const when = match.route.packageDeleteWhen
  return when !== undefined && headerSays(x, when) ? { ...match, route: asDelete(match.route) } : match
}

/**
 * Whether any line of the header holds the value. Rails compares the one value Puma hands it
 * (repeated lines joined with ', ', surrounding blanks dropped) exactly; any line, in any case,
 * reads at least every request GitLab would run as a destroy.
 */
function headerSays (x: StageView, when: PackageDeleteWhen): boolean {
  return headerLines(x, when.header).some(line => line.trim().toLowerCase() === when.value)
}

/** The route as a delete of its format, one frozen copy per route. */
const deleteRoutes = new WeakMap<CatalogRoute, CatalogRoute>()
const asDelete = (route: CatalogRoute): CatalogRoute => derivedRoute(deleteRoutes, route, { packageOperation: 'delete' })

/** `route` with `patch` applied: one frozen copy per route, kept in `copies`. */
function derivedRoute (copies: WeakMap<CatalogRoute, CatalogRoute>, route: CatalogRoute, patch: Partial<CatalogRoute>): CatalogRoute {
  let copy = copies.get(route)
  if (copy === undefined) {
    copy = Object.freeze({ ...route, ...patch })
    copies.set(route, copy)
  }
  return copy
}

/** The stages, in order; the name is the decision log's `stage`. */
export const STAGES: ReadonlyArray<readonly [PipelineStage, Stage]> = [
  ['canonicalize', canonicalizeStage],
  ['check_headers', checkHeadersStage],
  ['match_route', matchRouteStage],
  ['identify', identifyStage],
  ['user_roles', userRolesStage],
  ['resolve_grants', resolveGrantsStage],
  ['decide', decideStage],
  ['package_rules', packageRulesStage]
]

export type Outcome =
  | { readonly kind: 'forward' }
  | { readonly kind: 'deny', readonly deny: Deny }
  /** The client went away while a stage waited, which was then given up: nobody to answer. */
  | { readonly kind: 'gone' }

const FORWARD: Outcome = Object.freeze({ kind: 'forward' })
const GONE: Outcome = Object.freeze({ kind: 'gone' })

/** Records a decision on the exchange: runStages does, and the listeners after forwarding. */
export function settle (x: Exchange, verdict: Verdict, reason: Reason, stage: StageName): void {
  x.verdict = verdict
  x.reason = reason
  x.stage = stage
}

function shadowed (x: Pick<StageView, 'match' | 'canonical' | 'userCredentials'>, engine: Engine): boolean {
  if (engine.options.mode === 'shadow') return true
  const resource = deniedResource(x, engine.options.relativeUrlRoot ?? '')
  return resource !== undefined && engine.options.shadowResources.includes(resource)
}

/**
 * The catalog resource of a deny: its route's. A user's package write that no route lists (a
 * model delete of GitLab's web UI too) is refused by its format's rule as a packages route
 * would be, and shadowed with `packages`.
 */
function deniedResource (x: Pick<StageView, 'match' | 'canonical' | 'userCredentials'>, relativeUrlRoot: string): string | undefined {
  if (x.match !== null) return x.match.route.resource
  const canonical = x.canonical
  if (x.userCredentials === null || canonical === null) return undefined
  if (canonical.kind === 'other') return webModelRegistryDelete(canonical.method, canonical.path, relativeUrlRoot)?.[0]!.route.resource
  return uncataloguedPackageWrite(canonical.method, canonical.apiPath)?.route.resource
}

/**
 * Hot path: runs the stages of every request in order, and records on the exchange the verdict,
 * reason and name of the stage that decided. A plain indexed loop; a stage that returns a promise
 * is awaited and the loop goes on from the next stage once it settles, so a request whose stages
 * all answer synchronously (cached identity and grants) gets its outcome without a promise.
 */
export function runStages (x: Exchange, engine: Engine, from = 0): Outcome | Promise<Outcome> {
  for (let i = from; i < STAGES.length; i++) {
    let result: StageResult | Promise<StageResult>
    try {
      result = STAGES[i]![1](x, engine)
    } catch (err) {
      return failed(x, engine, i, err)
    }
    if (result instanceof Promise) {
      return result.then(r => afterStage(x, engine, i, r) ?? runStages(x, engine, i + 1), (err: unknown) => failed(x, engine, i, err))
    }
    const outcome = afterStage(x, engine, i, result)
    if (outcome !== null) return outcome
  }
  x.verdict = 'allow'
  return FORWARD
}

/** Records what stage `i` returned; null: go on with the next stage. */
function afterStage (x: Exchange, engine: Engine, i: number, result: StageResult): Outcome | null {
  if (result === 'continue') return null
  const name = STAGES[i]![0]
  switch (result.kind) {
    case 'allowed':
      settle(x, 'allow', result.reason, name)
      return null
    case 'forward':
      settle(x, result.verdict, result.reason, name)
      return FORWARD
    case 'deny':
      return denied(x, engine, name, result)
  }
}

/** A stage that threw: a store that cannot answer is a 503, never an allow; anything else is the gate's fault. */
function failed (x: Exchange, engine: Engine, i: number, err: unknown): Outcome {
  const name = STAGES[i]![0]
  if (err instanceof LookupDropped) {
    // Its lookup was dropped unstarted, everyone waiting for it gone. Only a gone client's can be;
    // any other would be refused, never let through undecided.
    if (x.client?.gone !== true) return denied(x, engine, name, denyOf('PROJECT_LOOKUPS_BUSY'))
    settle(x, 'error', 'CLIENT_ABORTED', name)
    return GONE
  }
  if (err instanceof GrantsError) {
    if (err instanceof GrantsStoreUnavailableError) x.storeError = err.message
    return denied(x, engine, name, denyOf(err.code as ErrorCode))
  }
  if (err instanceof GateError) return denied(x, engine, name, denyOf(err.code, { message: err.publicMessage }))
  throw err
}

function denied (x: Exchange, engine: Engine, stage: PipelineStage, deny: Deny): Outcome {
  x.missingPolicies = deny.missingPolicies ?? NO_MISSING_POLICIES
  if (deny.always !== true && shadowed(x, engine)) {
    settle(x, 'would_deny', deny.code, stage)
    return FORWARD
  }
  settle(x, deny.status >= 500 ? 'error' : 'deny', deny.code, stage)
  return { kind: 'deny', deny }
}
