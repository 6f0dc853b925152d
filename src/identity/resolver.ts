// Turning a job token into the identity of its job (docs/gitlab-rules.md, "Token format and
// validity"; app/finders/ci/auth_job_finder.rb). Two resolvers
// behind one interface, chosen by configuration:
// - introspection (default): GitLab itself says whether the token belongs to a running job
//   (`GET /api/v4/job`), and the job project's namespace chain comes from the projects and groups
//   APIs with a service token. Exact, at the cost of upstream calls, which the caches absorb.
// - local JWT: tokens that carry the project in signed claims (GitLab CI ID tokens) verified
//   against a key or JWKS, with no upstream call. Only as good as the token's lifetime: a
//   finished job's token stays valid until it expires.
// Both fail closed: every doubt is an IdentityError, an unreachable upstream a 503.

import type { JWTPayload } from 'jose'
import { answersAsked, createGitlabClient, GitlabUnavailable, type GitlabAnswer, type GitlabCall, type GitlabClient } from '../gitlab/client.ts'
import type { Waiter } from '../waiters.ts'
import { createLoaderCache, createTokenCache, type Clock } from './cache.ts'
import { checkJwt, checkTokenShape, jobTokenJwt, joseFailure, type JwtCheckOptions } from './jwt.ts'
import { createVerificationKey, type KeySource, type VerificationKey } from './keys.ts'
import { jobTokenBody } from './token-shape.ts'
import { IdentityError, isTransient, type ClosableJobResolver, type IdentityStats, type JobIdentity } from './types.ts'

export interface IdentityCacheOptions {
  /** Longest time a resolved token is trusted without asking again. Default 30 s; 0 keeps none. */
  readonly tokenTtlMs?: number
  /** Most resolved tokens kept; the least recently used go first. Default 10,000. */
  readonly maxTokens?: number
  /** How long a rejected token is remembered. Default 10 s; 0 disables. */
  readonly negativeTtlMs?: number
  /**
   * Projects and groups (paths, parents): these rarely change, but a transfer moves a job's
   * project under other groups, whose allowlist entries then apply. Default 60 s.
   */
  readonly namespaceTtlMs?: number
  readonly maxNamespaces?: number
  /** Epoch milliseconds for the TTLs, token expiry and the JWKS's max age and cooldowns; tests pass one they move by hand. Default Date. */
  readonly clock?: Clock
}

export interface IntrospectionResolverOptions {
  /** GitLab's base URL, with its relative URL root if any (`https://gitlab.example.com`). */
  readonly upstream: string
  /** GATE_SERVICE_TOKEN: a token that can read the job projects and their groups (sent as PRIVATE-TOKEN). */
  readonly serviceToken: string
  /** Bound on each upstream call. Default 5 s. */
  readonly timeoutMs?: number
  readonly connections?: number
  /** A GitLab client shared with other callers (src/gitlab/client.ts); without it the resolver makes its own from the options above. */
  readonly gitlab?: GitlabClient
  /**
   * Local checks of JWT job tokens before any call. `key`: GitLab's job token signing key
   * (ci_job_token_signing_key, public part) as PEM, or a JWKS file or URL; without it only
   * shape, algorithm, time and audience are checked. Default audience: `gitlab-authz-token`.
   */
  readonly jwt?: JwtCheckOptions & { readonly key?: KeySource }
  readonly cache?: IdentityCacheOptions
  readonly onWarning?: (message: string) => void
}

/** Claim names, per identity field. Defaults fit GitLab CI ID tokens. */
export interface ClaimMap {
  readonly jobId: string
  readonly projectId: string
  readonly projectPath: string
  readonly namespaceId: string
  readonly userId: string
  /** A claim with the ancestor group ids, nearest first (array, or comma-separated); unset: just the namespace id. */
  readonly ancestors?: string
}

export const DEFAULT_CLAIMS: ClaimMap = {
  jobId: 'job_id',
  projectId: 'project_id',
  projectPath: 'project_path',
  namespaceId: 'namespace_id',
  userId: 'user_id'
}

export interface LocalJwtResolverOptions {
  readonly key: KeySource
  readonly issuer: string
  readonly audience: string | readonly string[]
  readonly algorithms?: readonly string[]
  readonly clockToleranceSec?: number
  /** Allowed clock skew on `nbf` alone. Default 60 s. */
  readonly notBeforeToleranceSec?: number
  readonly claims?: Partial<ClaimMap>
  readonly cache?: IdentityCacheOptions
  readonly onWarning?: (message: string) => void
}

export type JobResolverOptions =
  | ({ readonly kind?: 'introspection' } & IntrospectionResolverOptions)
  | ({ readonly kind: 'jwt' } & LocalJwtResolverOptions)

export function createJobResolver (options: JobResolverOptions): ClosableJobResolver {
  return options.kind === 'jwt' ? createLocalJwtResolver(options) : createIntrospectionResolver(options)
}

const GITLAB_JOB_TOKEN_AUDIENCE = 'gitlab-authz-token'
/**
 * Clock skew allowed on a token's nbf: GitLab writes nbf 5 s before it issues a job token or an
 * ID token (lib/json_web_token/token.rb, lib/gitlab/ci/jwt.rb), on its own clock, so a token
 * whose nbf is ahead of the gate's clock was issued by a GitLab whose clock is ahead.
 */
const GITLAB_NBF_TOLERANCE_SEC = 60
/** Deeper than GitLab's limit of 20 nested groups means a loop in the answers. */
const MAX_GROUP_DEPTH = 21

// ---------------------------------------------------------------------------------------------
// GitLab introspection

interface ProjectInfo {
  readonly path: string
  readonly ancestors: readonly number[]
  /** When the oldest GitLab answer the chain is made of was asked for (the namespace caches' clock). */
  readonly readAt: number
}

/** A group's parent, and when GitLab was asked for it. */
interface GroupParent {
  readonly parent: number | null
  readonly readAt: number
}

/**
 * Resolved tokens by hash; failures that say something about the token are remembered briefly.
 * `namespaceLifetimeOf`: how much longer the namespace answers an identity was built from may be
 * trusted (undefined: not limited by them).
 */
function identityTokenCache (c: IdentityCacheOptions, namespaceLifetimeOf: (identity: JobIdentity) => number | undefined = () => undefined): ReturnType<typeof createTokenCache<JobIdentity>> {
  const ttlMs = c.tokenTtlMs ?? 30_000
  return createTokenCache<JobIdentity>({
    max: c.maxTokens ?? 10_000,
    // 0 (GATE_IDENTITY_CACHE_TTL_MS=0): no resolved token is kept, GitLab is asked on every
    // request; the loader cache takes a positive TTL, and a lifetime of 0 keeps nothing.
    ttlMs: Math.max(1, ttlMs),
    negativeTtlMs: c.negativeTtlMs ?? 10_000,
    cacheableError: err => err instanceof IdentityError && !isTransient(err.code),
    lifetimeOf: identity => {
      if (ttlMs === 0) return 0
      const token = identity.expiresAt === undefined ? undefined : identity.expiresAt - (c.clock ?? Date).now()
      const groups = namespaceLifetimeOf(identity)
      return token === undefined ? groups : groups === undefined ? token : Math.min(token, groups)
    },
    ...(c.clock === undefined ? {} : { clock: c.clock })
  })
}

export function createIntrospectionResolver (options: IntrospectionResolverOptions): ClosableJobResolver {
  let base: URL
  try {
    base = new URL(options.upstream)
  } catch {
    throw new TypeError(`upstream is not a URL: ${options.upstream}`)
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`upstream must be http(s), got ${base.protocol}`)
  if (typeof options.serviceToken !== 'string' || options.serviceToken === '' || options.gitlab?.hasServiceToken === false) {
    throw new TypeError('serviceToken (GATE_SERVICE_TOKEN) is required to read job projects and groups')
  }
  const timeoutMs = options.timeoutMs ?? 5_000
  const jwtOptions: JwtCheckOptions = {
    algorithms: options.jwt?.algorithms ?? ['RS256'],
    issuer: options.jwt?.issuer,
    audience: options.jwt?.audience === undefined ? GITLAB_JOB_TOKEN_AUDIENCE : options.jwt.audience,
    clockToleranceSec: options.jwt?.clockToleranceSec,
    // GitLab writes nbf 5 s before it issues a token, on its own clock, and checks it again
    // itself: refusing one here for a gate clock a little behind GitLab's refuses a token
    // GitLab accepts (and remembers that for the negative TTL).
    notBeforeToleranceSec: options.jwt?.notBeforeToleranceSec ?? GITLAB_NBF_TOLERANCE_SEC,
    clock: options.cache?.clock
  }
  const counters = identityCounters()
  const key: VerificationKey | undefined = options.jwt?.key === undefined ? undefined : createVerificationKey(options.jwt.key, { ...options, onRefresh: counters.onRefresh, clock: options.cache?.clock })
  const gitlab = options.gitlab ?? createGitlabClient({ url: options.upstream, serviceToken: options.serviceToken, timeoutMs, ...(options.connections === undefined ? {} : { connections: options.connections }) })
  const c = options.cache ?? {}
  // A job's groups decide which group allowlist entries let it in: an identity, and a project's
  // chain, are trusted no longer than the oldest namespace answer they are made of, so a transfer
  // in GitLab reaches decisions within namespaceTtlMs, however the caches' entries are staggered
  // (a cached group parent read into a new project chain, a chain read into a new token).
  const namespaceTtlMs = c.namespaceTtlMs ?? 60_000
  const clock = c.clock ?? performance
  const namespaceReadAt = new WeakMap<JobIdentity, number>()
  // Jobs a runner took and has not acknowledged yet: their answer holds only until the runner
  // answers (it may decline the job, whose token GitLab then refuses), so it is not kept.
  const awaitingRunner = new WeakSet<JobIdentity>()
  const namespaceLifetime = (readAt: number): number => namespaceTtlMs - (clock.now() - readAt)
  const tokens = identityTokenCache(c, identity => {
    if (awaitingRunner.has(identity)) return 0
    const readAt = namespaceReadAt.get(identity)
    return readAt === undefined ? undefined : namespaceLifetime(readAt)
  })
  const namespaceCache = { max: c.maxNamespaces ?? 10_000, ttlMs: namespaceTtlMs, ...(c.clock === undefined ? {} : { clock: c.clock }) }
  const projects = createLoaderCache<ProjectInfo>({ ...namespaceCache, lifetimeOf: info => namespaceLifetime(info.readAt) })
  const groupParents = createLoaderCache<GroupParent>(namespaceCache)

  /** One GET, its answer mapped to identity's errors; `signal`: aborted once nobody waits for it. */
  const getJson = async (path: string, as: GitlabCall['as'], endpoint: IntrospectionEndpoint, signal: AbortSignal): Promise<Readonly<Record<string, unknown>>> => {
    let answer: GitlabAnswer
    try {
      answer = await gitlab.get(path, { endpoint, as, signal })
    } catch (err) {
      if (!(err instanceof GitlabUnavailable)) throw err
      throw new IdentityError('IDENTITY_UPSTREAM_UNAVAILABLE', `GET ${path} failed: ${err.reason}`, { cause: err })
    }
    const { status } = answer
    if (status === 429 || status >= 500) throw new IdentityError('IDENTITY_UPSTREAM_UNAVAILABLE', `GET ${path} answered ${status}`)
    if (endpoint === 'job' && (status === 401 || status === 403)) throw new IdentityError('TOKEN_UNKNOWN', `GET ${path} answered ${status}`)
    if (status !== 200) throw new IdentityError('IDENTITY_LOOKUP_FAILED', `GET ${path} answered ${status}`)
    if (answer.body === undefined) throw new IdentityError('IDENTITY_LOOKUP_FAILED', `GET ${path} answered something other than a JSON object`)
    return answer.body
  }

  // An answer for another group or project (answersAsked) would put the job under another project's groups.
  const answersFor = (body: Readonly<Record<string, unknown>>, id: number, kind: string): void => {
    if (typeof body.id !== 'number' || !answersAsked(String(id), body.id)) throw lookupFailed(`GET ${kind} ${id} answered ${kind} ${String(body.id)}`)
  }

  // A namespace load waits for whoever waits for the loads it serves (`waiter`): given up with them.
  const groupParent = (id: number, waiter: Waiter): Promise<GroupParent> => groupParents.get(String(id), async signal => {
    const readAt = clock.now()
    const group = await getJson(`/api/v4/groups/${id}?with_projects=false`, 'service', 'group', signal)
    answersFor(group, id, 'group')
    return { parent: optionalId(group.parent_id, `group ${id} parent_id`), readAt }
  }, waiter)

  const project = (id: number, waiter: Waiter): Promise<ProjectInfo> => projects.get(String(id), async (signal, waiters) => {
    const readAt = clock.now()
    const p = await getJson(`/api/v4/projects/${id}`, 'service', 'project', signal)
    answersFor(p, id, 'project')
    const path = p.path_with_namespace
    const ns = p.namespace as Record<string, unknown> | null | undefined
    if (typeof path !== 'string' || ns === null || typeof ns !== 'object') throw lookupFailed(`project ${id} has no path or namespace`)
    if (ns.kind !== 'group') return { path, ancestors: [], readAt } // a user namespace: no groups above
    const nearest = requiredId(ns.id, `project ${id} namespace.id`)
    // The namespace's parent_id, where GitLab sends it, saves reading the nearest group.
    const parent = 'parent_id' in ns ? optionalId(ns.parent_id, `project ${id} namespace.parent_id`) : undefined
    const chain = await groupChain(nearest, id, waiters, parent)
    return { path, ancestors: chain.ancestors, readAt: Math.min(readAt, chain.readAt) }
  }, waiter)

  /**
   * The job project's ancestor groups from its nearest group (its namespace), nearest first;
   * `firstParent`: the nearest group's parent when already known. `readAt`: when the oldest
   * group answer it was read from was asked for (Infinity when none was read).
   */
  const groupChain = async (nearest: number, projectId: number, waiter: Waiter, firstParent?: number | null): Promise<{ ancestors: number[], readAt: number }> => {
    const ancestors = [nearest]
    let readAt = Infinity
    const parentOf = async (id: number): Promise<number | null> => {
      const read = await groupParent(id, waiter)
      readAt = Math.min(readAt, read.readAt)
      return read.parent
    }
    let parent = firstParent === undefined ? await parentOf(nearest) : firstParent
    while (parent !== null) {
      if (ancestors.includes(parent) || ancestors.length >= MAX_GROUP_DEPTH) throw lookupFailed(`group parents of project ${projectId} loop or nest too deep`)
      ancestors.push(parent)
      parent = await parentOf(parent)
    }
    return { ancestors, readAt }
  }

  const introspect = async (token: string, jwt: string | null, signal: AbortSignal, waiters: Waiter): Promise<JobIdentity> => {
    let expiresAt: number | undefined
    let claimedProject: number | null = null
    let subjectJob: number | null = null
    if (jwt !== null) {
      const payload = await checkJwt(jwt, key, jwtOptions)
      expiresAt = (payload.exp as number) * 1000
      // Claims are only trusted from a token whose signature was verified: without a key, checkJwt
      // checked nothing a forger could not write.
      if (key !== undefined) claimedProject = routableProject(payload)
      // `sub` is only compared, never trusted: GitLab answers 200 for a JWT only for the job its
      // `sub` names, so a forged one gains nothing and a genuine one always matches.
      subjectJob = jobOfSubject(payload.sub)
    }
    // The job status check stays, claims or not: a signed token outlives its job.
    const job = await getJson('/api/v4/job', { 'job-token': token }, 'job', signal)
    // `/job` is one URL for every token: an answer for another job (a cache in front of GitLab
    // that ignores JOB-TOKEN) would put the token under that job's project, or keep that job's
    // status as a verdict on the token. A lookup failure, never kept: the answer is wrong, not
    // the token.
    if (subjectJob !== null && toId(job.id) !== subjectJob) throw lookupFailed(`GET /api/v4/job answered job ${String(toId(job.id))} for a token of job ${subjectJob}`)
    // GitLab accepts a token while its job executes: running, or canceling while after_script
    // runs (app/finders/ci/auth_job_finder.rb, Ci::HasStatus::EXECUTING_STATUSES), and while a
    // runner that took the job has not acknowledged it yet (`pending`, waiting_for_runner_ack?):
    // GET /job answers 200 for no other pending job, so `pending` here is that one.
    // An answer without a status says nothing about the token: a lookup failure, never kept.
    if (typeof job.status !== 'string') throw lookupFailed('job answer has no status')
    const awaiting = job.status === 'pending'
    if (!awaiting && job.status !== 'running' && job.status !== 'canceling') throw new IdentityError('TOKEN_JOB_NOT_RUNNING', `job is ${job.status.slice(0, 32)}`)
    const jobId = requiredId(job.id, 'job id')
    const projectId = requiredId((job.pipeline as Record<string, unknown> | undefined)?.project_id, 'job pipeline.project_id')
    const userId = requiredId((job.user as Record<string, unknown> | undefined)?.id, 'job user.id')
    const pipelineId = toId((job.pipeline as Record<string, unknown> | undefined)?.id)
    const rest = { userId, ...(pipelineId === null ? {} : { pipelineId }), ...(expiresAt === undefined ? {} : { expiresAt }) }
    // A signed token and GitLab disagreeing on the project: trust neither. The token's group (`g`)
    // is not read: it names the group the project was in when the job started, and a transfer
    // since then moves the project under groups whose allowlist entries GitLab reads now.
    if (claimedProject !== null && claimedProject !== projectId) throw new IdentityError('TOKEN_CLAIMS_INVALID', `JWT claim p names project ${claimedProject}, GitLab's job is in project ${projectId}`)
    const info = await project(projectId, waiters)
    const identity: JobIdentity = { jobId, jobProjectId: projectId, jobProjectPath: info.path, ancestorGroupIds: info.ancestors, ...rest }
    namespaceReadAt.set(identity, info.readAt)
    if (awaiting) awaitingRunner.add(identity)
    return identity
  }

  return {
    async resolve (token, waiter) {
      checkTokenShape(token)
      const jwt = jobTokenJwt(token)
      return await tokens.get(token, (signal, waiters) => failClosed(introspect(token, jwt, signal, waiters)), waiter)
    },
    // Only a token that passed the shape checks above was ever cached: a hit needs none of them.
    cached: (token, connection) => tokens.cached(token, connection),
    async close () {
      // A client handed in is its owner's to close.
      if (options.gitlab === undefined) await gitlab.close()
    },
    stats: () => counters.stats(tokens, gitlab),
    gitlab
  }
}

// ---------------------------------------------------------------------------------------------
// Local JWT

export function createLocalJwtResolver (options: LocalJwtResolverOptions): ClosableJobResolver {
  if (typeof options.issuer !== 'string' || options.issuer === '') throw new TypeError('issuer is required for the local JWT resolver')
  if (options.audience === undefined || options.audience.length === 0) throw new TypeError('audience is required for the local JWT resolver')
  const counters = identityCounters()
  const key = createVerificationKey(options.key, { ...options, onRefresh: counters.onRefresh, clock: options.cache?.clock })
  const claims: ClaimMap = { ...DEFAULT_CLAIMS, ...options.claims }
  const jwtOptions: JwtCheckOptions = {
    algorithms: options.algorithms ?? ['RS256'],
    issuer: options.issuer,
    audience: options.audience,
    clockToleranceSec: options.clockToleranceSec,
    // Nobody else checks nbf here: refusing a fresh token for a gate clock a little behind
    // GitLab's refused every new job's token (and remembered that for the negative TTL).
    notBeforeToleranceSec: options.notBeforeToleranceSec ?? GITLAB_NBF_TOLERANCE_SEC,
    clock: options.cache?.clock
  }
  const c = options.cache ?? {}
  const tokens = identityTokenCache(c)

  return {
    async resolve (token) {
      checkTokenShape(token)
      // A `glcbt-` or `<instance prefix>-glcbt-` prefix is not part of the JWT.
      const jwt = jobTokenBody(token) ?? token
      return await tokens.get(token, () => failClosed((async () => identityFromClaims(await checkJwt(jwt, key, jwtOptions), claims))()))
    },
    cached: (token, connection) => tokens.cached(token, connection),
    async close () {},
    stats: () => counters.stats(tokens, null)
  }
}

function identityFromClaims (payload: JWTPayload, claims: ClaimMap): JobIdentity {
  const bad = (field: string): IdentityError => new IdentityError('TOKEN_CLAIMS_INVALID', `JWT claim for ${field} is missing or invalid`)
  const id = (name: string): number => {
    const n = toId(payload[name])
    if (n === null) throw bad(name)
    return n
  }
  const path = payload[claims.projectPath]
  if (typeof path !== 'string' || path === '') throw bad(claims.projectPath)
  const namespaceId = id(claims.namespaceId)
  let ancestors: number[] = [namespaceId]
  if (claims.ancestors !== undefined) {
    const raw = payload[claims.ancestors]
    const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',').map(s => s.trim()) : null
    const ids = list?.map(toId) ?? null
    if (ids === null || ids.length === 0 || ids.some(v => v === null)) throw bad(claims.ancestors)
    ancestors = ids as number[]
  }
  return {
    jobId: id(claims.jobId),
    jobProjectId: id(claims.projectId),
    jobProjectPath: path,
    ancestorGroupIds: ancestors,
    userId: id(claims.userId),
    expiresAt: (payload.exp as number) * 1000
  }
}

// ---------------------------------------------------------------------------------------------

type IntrospectionEndpoint = 'job' | 'project' | 'group'
const INTROSPECTION_ENDPOINTS: ReadonlySet<string> = new Set<IntrospectionEndpoint>(['job', 'project', 'group'])

/**
 * Counters behind a resolver's stats() (metrics read them at scrape time). Introspection calls
 * are the GitLab client's counts for identity's endpoints; a client shared with the
 * configuration API also counts that API's calls, under other endpoint names.
 */
function identityCounters (): { onRefresh: (ok: boolean) => void, stats: (tokens: { stats: () => IdentityStats['tokenCache'] }, gitlab: GitlabClient | null) => IdentityStats } {
  let jwksRefreshes = 0
  let jwksFailures = 0
  return {
    onRefresh: ok => { if (ok) jwksRefreshes++; else jwksFailures++ },
    stats: (tokens, gitlab) => {
      const calls = gitlab?.stats() ?? {}
      const introspection = Object.fromEntries(Object.entries(calls).filter(([k]) => INTROSPECTION_ENDPOINTS.has(k.slice(0, k.indexOf(':')))))
      return { tokenCache: tokens.stats(), introspection, jwksRefreshes, jwksFailures }
    }
  }
}

/** Any failure that is not already a verdict becomes a transient one: never an allow, never cached. */
async function failClosed<T> (work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (err) {
    if (err instanceof IdentityError) throw err
    throw joseFailure(err)
  }
}

/**
 * `p`, the project id of a job token JWT, base 36 as GitLab writes routable claims
 * (lib/ci/job_token/jwt.rb, `routable_payload`; newer GitLab). Null when the token has no usable
 * `p` (older GitLab).
 */
export function routableProject (payload: JWTPayload): number | null {
  return base36Id(payload.p)
}

/**
 * The job a job token JWT names: `sub` is the job's global ID, `gid://gitlab/Ci::Build/<id>`
 * (lib/authn/tokens/jwt.rb, `rsa_encode`). Null for anything else.
 */
function jobOfSubject (sub: unknown): number | null {
  if (typeof sub !== 'string') return null
  const m = /^gid:\/\/gitlab\/Ci::Build\/([1-9]\d{0,15})(?:\?[^#]*)?$/.exec(sub)
  const id = m === null ? null : toId(m[1])
  return id !== null && Number.isSafeInteger(id) ? id : null
}

function base36Id (value: unknown): number | null {
  if (typeof value !== 'string' || !/^[0-9a-z]{1,11}$/.test(value)) return null
  const n = Number.parseInt(value, 36)
  return Number.isSafeInteger(n) && n > 0 ? n : null
}

function toId (value: unknown): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : null
  if (typeof value === 'string' && /^[1-9]\d{0,15}$/.test(value)) return Number(value)
  return null
}

function requiredId (value: unknown, what: string): number {
  const id = toId(value)
  if (id === null) throw lookupFailed(`${what} is missing or not an id`)
  return id
}

function optionalId (value: unknown, what: string): number | null {
  return value === null || value === undefined ? null : requiredId(value, what)
}

function lookupFailed (message: string): IdentityError {
  return new IdentityError('IDENTITY_LOOKUP_FAILED', message)
}
