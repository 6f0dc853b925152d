// The request path as a list of named stages (canonicalize → match route → find credential →
// resolve identity → resolve grants → decide), each returning "continue", "forward now" or a
// deny with a reason code. The same stages serve the proxy and the forward-auth endpoint;
// only what happens after them differs.

import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import { errors, type ErrorCode } from '../errors.ts'
import type { GrantCache } from '../grants/cache.ts'
import { GrantsError } from '../grants/errors.ts'
import type { InstanceSettings, StoredGrants } from '../grants/model.ts'
import type { ForwardBody, IdentityStage } from '../identity/stage.ts'
import type { UserRoleCheck } from '../admin/roles.ts'
import type { JobIdentity } from '../identity/types.ts'
import { decide, notAllowlistedMessage } from '../policy/decide.ts'
import { CREDENTIAL_HEADERS } from '../identity/credentials.ts'
import { checkPackageRules } from '../policy/package-check.ts'
import { connectionDropsDecisionHeader } from '../proxy/forward.ts'
import type { PolicyIndex } from '../catalog/policy-index.ts'
import { accessedProject } from '../routing/accessed.ts'
import type { CanonicalRequest } from '../routing/canonical.ts'
import type { CatalogRoute } from '../catalog/types.ts'
import type { RouteMatch, Router } from '../routing/router.ts'

/** What the stages need from the process: built once by createGate, replaced whole on reload. */
export interface Engine {
  readonly router: Router
  readonly canonicalize: (method: string, target: string) => CanonicalRequest
  readonly policies: PolicyIndex
  readonly settings: InstanceSettings
  readonly grants: GrantCache
  readonly identity: IdentityStage
  /** Per package format rules for requests without a job token (src/admin/roles.ts). */
  readonly userRoles?: UserRoleCheck
  readonly options: {
    readonly mode: 'enforce' | 'shadow'
    readonly shadowResources: readonly string[]
    readonly nonApiJobTokens: 'forward' | 'deny'
    readonly unresolvedProject: 'defer' | 'deny'
  }
}

/** How the request ended up, for logs and metrics; `reason` is a stable code. */
export type Verdict = 'allow' | 'deny' | 'would_deny' | 'deferred' | 'no_job_token' | 'error'

export interface Deny {
  readonly code: ErrorCode
  readonly status: number
  readonly message: string
  readonly headers?: Readonly<Record<string, string>>
  readonly missingPolicies?: readonly string[]
  /** Path and body errors are never shadowed: they are answered in every mode. */
  readonly always?: boolean
}

export interface Exchange {
  readonly method: string
  readonly target: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: readonly string[]
  /** The request body: null for forward-auth (no body) or once consumed. */
  body: Readable | null
  canonical: Extract<CanonicalRequest, { kind: 'api' | 'other' }> | null
  /** The canonical form when the caller already computed it (the admin hook does), so it is not done twice. */
  precomputed: CanonicalRequest | null
  match: RouteMatch | null
  /** What to forward: the inspected bytes, the guarded multipart stream or the request itself. */
  forwardBody: ForwardBody | null
  identity: JobIdentity | null
  accessedProjectId: number | null
  /** The accessed project's grants, read once by decide for decide and the package rules. */
  grants: StoredGrants | null
  verdict: Verdict
  reason: string
  missingPolicies: readonly string[]
  /** Called before the body is read, for `Expect: 100-continue`. */
  readonly beforeBodyRead?: () => void
}

export function newExchange (method: string, target: string, headers: IncomingHttpHeaders, rawHeaders: readonly string[], body: Readable | null, beforeBodyRead?: () => void): Exchange {
  return {
    method, target, headers, rawHeaders, body, canonical: null, precomputed: null, match: null, forwardBody: null, identity: null, accessedProjectId: null, grants: null,
    verdict: 'allow', reason: 'ALLOWED', missingPolicies: [], ...(beforeBodyRead === undefined ? {} : { beforeBodyRead })
  }
}

type StageResult = 'continue' | 'forward' | Deny

// Forward-auth requests carry no body.
const emptyBody = (): Readable => Readable.from([])
type Stage = (x: Exchange, engine: Engine) => StageResult | Promise<StageResult>

function denyOf (code: ErrorCode, extra: Partial<Deny> = {}): Deny {
  return { code, status: errors[code].status, message: errors[code].message, ...extra }
}

const canonicalizeStage: Stage = (x, engine) => {
  const canonical = x.precomputed ?? engine.canonicalize(x.method, x.target)
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
  if (canonical.kind === 'api') x.match = engine.router.match(canonical.method, canonical.apiPath)
  return 'continue'
}

// Find the credential (headers, query, body) and resolve the job behind a job token:
// src/identity/stage.ts does both, and hands back the body to forward.
const identifyStage: Stage = async (x, engine) => {
  const canonical = x.canonical!
  const outcome = await engine.identity.run({
    canonical, route: x.match?.route ?? null, headers: x.headers, rawHeaders: x.rawHeaders, body: x.body ?? emptyBody(),
    ...(x.beforeBodyRead === undefined ? {} : { beforeBodyRead: x.beforeBodyRead }),
    ...(canonical.kind === 'api' ? { methodOverride: (method: string) => routeAs(x, engine, canonical, method) } : {})
  })
  const route = x.match?.route ?? null
  if (outcome.kind === 'deny') {
    const { answer } = outcome
    return { code: outcome.code, status: answer.status, message: answer.body.message, headers: answer.headers, always: answer.status === 413 || answer.status === 400 || answer.status === 415 }
  }
  x.forwardBody = x.body === null ? null : outcome.body
  if (outcome.kind === 'none') {
    x.verdict = 'no_job_token'
    x.reason = 'NO_JOB_TOKEN'
    // A project's package rules also limit users' writes to Maintainers (src/admin/roles.ts).
    if (route?.packageFormat !== undefined && engine.userRoles !== undefined) {
      const refusal = await engine.userRoles.check({ match: x.match!, credentials: outcome.credentials })
      if (refusal !== null) return denyOf(refusal.code, refusal.message === undefined ? {} : { message: refusal.message })
    }
    return 'forward'
  }
  x.identity = outcome.identity
  if (x.canonical!.kind === 'other') {
    if (engine.options.nonApiJobTokens === 'deny') return denyOf('NON_API_JOB_TOKEN')
    x.verdict = 'deferred'
    x.reason = 'NON_API_PATH'
    return 'forward'
  }
  // GitLab refuses a job token on a route that does not accept one; the catalog lists every
  // route that does.
  if (route === null) return denyOf('ROUTE_NOT_FOR_JOB_TOKENS')
  return 'continue'
}

/**
 * Rack::MethodOverride routes a POST as its `_method` or X-HTTP-Method-Override (found by the
 * identity stage): from here on the canonical method and the route, which every later stage and
 * the decision log read, are the ones GitLab routes. The request is forwarded as sent (x.method).
 */
function routeAs (x: Exchange, engine: Engine, canonical: Extract<CanonicalRequest, { kind: 'api' }>, method: string): CatalogRoute | null {
  // HEAD is served by the GET route, as canonicalize() reads it.
  const routed = method === 'HEAD' ? 'GET' : method
  x.canonical = { ...canonical, method: routed }
  x.match = engine.router.match(routed, canonical.apiPath)
  return x.match?.route ?? null
}

const resolveGrantsStage: Stage = async (x, engine) => {
  const match = x.match!
  const identity = x.identity!
  const accessed = accessedProject(match)
  switch (accessed.kind) {
    case 'project_id':
      x.accessedProjectId = accessed.id
      return 'continue'
    case 'project_path': {
      if (accessed.path.toLowerCase() === identity.jobProjectPath.toLowerCase()) {
        x.accessedProjectId = identity.jobProjectId
        return 'continue'
      }
      const id = await engine.grants.resolvePath(accessed.path)
      if (id !== null) {
        x.accessedProjectId = id
        return 'continue'
      }
      // Neither the job's own project nor one the store knows: as GitLab with an empty allowlist.
      if (engine.settings.unknownProject === 'allow') {
        x.reason = 'UNKNOWN_PROJECT_ALLOWED'
        return 'forward'
      }
      return denyOf('UNKNOWN_PROJECT', { message: notAllowlistedMessage(identity, accessed.path) })
    }
    case 'job':
      // The job's own artifacts are self access; another job's project is not in the URL.
      if (accessed.jobId === identity.jobId) {
        x.reason = 'SELF_ACCESS'
        return 'forward'
      }
      return unresolved(x, engine)
    case 'token_job':
      x.reason = 'SELF_ACCESS'
      return 'forward'
    case 'unknown':
      return unresolved(x, engine)
  }
}

function unresolved (x: Exchange, engine: Engine): StageResult {
  if (engine.options.unresolvedProject === 'deny') return denyOf('PROJECT_NOT_IN_URL')
  x.verdict = 'deferred'
  x.reason = 'PROJECT_NOT_IN_URL'
  return 'forward'
}

const decideStage: Stage = async (x, engine) => {
  const projectId = x.accessedProjectId!
  const identity = x.identity!
  const route = x.match!.route
  // Self access needs no allowlist, but the package rules stage still needs the project's rules.
  if (projectId !== identity.jobProjectId || route.packageFormat !== undefined) x.grants = await engine.grants.get(projectId)
  const decision = decide(route, identity, projectId, x.grants, engine.settings, engine.policies)
  if (decision.allow) {
    x.reason = decision.reason
    return 'continue'
  }
  return denyOf(decision.reason, { message: decision.message, missingPolicies: decision.missingPolicies })
}

// Per package format rules (configuration API): after GitLab's decision, for every job token,
// self access included. Only package routes (catalog `packageFormat`) read the grants again.
const packageRulesStage: Stage = (x) => {
  const route = x.match!.route
  if (route.packageFormat === undefined) return 'continue'
  const projectId = x.accessedProjectId!
  const verdict = checkPackageRules(route, x.grants, projectId)
  return verdict.allow ? 'continue' : denyOf(verdict.reason, { message: verdict.message })
}

/** The stages, in order. */
export const STAGES: ReadonlyArray<readonly [string, Stage]> = [
  ['canonicalize', canonicalizeStage],
  ['check_headers', checkHeadersStage],
  ['match_route', matchRouteStage],
  ['identify', identifyStage],
  ['resolve_grants', resolveGrantsStage],
  ['decide', decideStage],
  ['package_rules', packageRulesStage]
]

export type Outcome =
  | { readonly kind: 'forward' }
  | { readonly kind: 'deny', readonly deny: Deny }

function shadowed (x: Exchange, engine: Engine): boolean {
  if (engine.options.mode === 'shadow') return true
  const resource = x.match?.route.resource
  return resource !== undefined && engine.options.shadowResources.includes(resource)
}

/** Runs the stages; fills the exchange's verdict and reason. */
export async function runStages (x: Exchange, engine: Engine): Promise<Outcome> {
  let deny: Deny | null = null
  try {
    for (const [, stage] of STAGES) {
      const result = await stage(x, engine)
      if (result === 'continue') continue
      if (result === 'forward') return { kind: 'forward' }
      deny = result
      break
    }
  } catch (err) {
    // A store that cannot answer is a 503, never an allow.
    if (err instanceof GrantsError) deny = denyOf(err.code as ErrorCode)
    else throw err
  }
  if (deny === null) {
    x.verdict = 'allow'
    return { kind: 'forward' }
  }
  x.reason = deny.code
  x.missingPolicies = deny.missingPolicies ?? []
  if (deny.always !== true && shadowed(x, engine)) {
    x.verdict = 'would_deny'
    return { kind: 'forward' }
  }
  x.verdict = deny.status >= 500 ? 'error' : 'deny'
  return { kind: 'deny', deny }
}
