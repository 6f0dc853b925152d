// A small fake GitLab for identity tests, on port 0: `GET /api/v4/job` (JOB-TOKEN),
// `GET /api/v4/projects/:id` and `GET /api/v4/groups/:id` (PRIVATE-TOKEN = the service token),
// and a JWKS at `/oauth/discovery/keys`. For the project lookups of group and instance routes:
// group package lists (`GET /api/v4/groups/:id/packages`, GitLab's filters, order and offset
// pagination; projects whose repository is disabled left out, as GroupPackagesFinder does), a
// project's package list (`GET /api/v4/projects/:id/packages`), a group's projects with their
// feature access levels (`GET /api/v4/groups/:id/projects`), npm
// metadata at the instance and group levels (the project GitLab's npm helper finds, named by the
// tarball URLs), a moved project's old path answered with a 301, `GET /api/v4/namespaces/:id`,
// a pipeline's jobs and bridges, and, with `packageQueries`, GraphQL's `package(id:)` for the
// service token (the package's type and project, as GitLab shows them). It counts calls per endpoint and can be made slow or
// failing per endpoint while a test runs.
// Like GitLab's Grape, it answers a path that ends in `.txt` as text/plain, not JSON (grapeFormat).

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { JSONWebKeySet } from 'jose'

export type ServiceRole = 'admin' | 'auditor' | 'user' | 'admin_without_admin_mode'

export type Endpoint = 'job' | 'project' | 'group' | 'jwks' | 'packages' | 'group_projects' | 'npm_metadata' | 'namespace' | 'pipeline' | 'service_user' | 'registry_upstreams' | 'job_user' | 'token_self' | 'package_query'

export interface FakePackage {
  readonly id: number
  readonly name: string
  /** null: a versionless package (Maven metadata). */
  readonly version: string | null
  readonly packageType: 'npm' | 'maven' | 'pypi' | 'conan' | 'generic' | 'golang' | 'ml_model'
  readonly projectId: number
  readonly createdAt: string
  /** GitLab's package status (default: 'default'); `deprecated` is what `npm deprecate` sets in recent GitLab. */
  readonly status?: 'default' | 'hidden' | 'processing' | 'error' | 'pending_destruction' | 'deprecated'
}

// Packages::Package (app/models/packages/package.rb): what finders install from, and what the
// package lists show when no `status` is asked for.
const INSTALLABLE: ReadonlySet<string> = new Set(['default', 'hidden', 'deprecated'])
const DISPLAYABLE: ReadonlySet<string> = new Set(['default', 'error', 'deprecated'])

export interface FakeJob {
  readonly id: number
  /** GitLab job status: 'running', 'success', 'failed', 'canceled', ... */
  status: string
  readonly projectId: number
  readonly userId: number
}

export interface FakeProject {
  readonly id: number
  readonly pathWithNamespace: string
  readonly namespace: { readonly id: number, readonly kind: 'group' | 'user', readonly fullPath: string, readonly parentId: number | null }
  /** GitLab's `visibility`; default private. A public project is shown without a token too. */
  visibility?: 'private' | 'internal' | 'public'
  /** `<feature>_access_level` by feature (`package_registry`: 'enabled', ...); every other feature of FEATURES is enabled. */
  accessLevels?: Readonly<Record<string, 'disabled' | 'private' | 'enabled' | 'public'>>
}

/** Project features the projects API reports as `<feature>_access_level`. */
export const FEATURES = ['issues', 'repository', 'merge_requests', 'forking', 'wiki', 'builds', 'snippets', 'pages', 'analytics', 'container_registry', 'security_and_compliance', 'releases', 'environments', 'feature_flags', 'infrastructure', 'monitor', 'package_registry'] as const

export interface FakeGroup {
  readonly id: number
  readonly fullPath: string
  readonly parentId: number | null
}

export interface FakeUser {
  readonly id: number
  readonly username: string
  readonly access?: Readonly<Record<number, number>>
  readonly groupAccess?: Readonly<Record<number, number>>
  /**
   * `GET /api/v4/user` with this token answers 403 (a fine-grained token without a permission to
   * read its own user: GitLab's `insufficient_granular_scope`), while its project lookups answer.
   */
  readonly userHidden?: boolean
  /**
   * `GET /api/v4/projects/:id` with this token answers 403 (a personal access token without the
   * `api` or `read_api` scope: GitLab's `insufficient_scope`), while the package routes that
   * declare `authenticate_with`, which check no scope, take it.
   */
  readonly projectsRefused?: boolean
  /**
   * GitLab's API refuses this user, 403 on every request (find_current_user!: `access_api`, which
   * GitLab withholds from a user who has not accepted the instance's terms), while the web UI
   * serves them on any request but an HTML page.
   */
  readonly apiDenied?: boolean
}

export interface FakeGitlabOptions {
  readonly serviceToken?: string
  /**
   * `GET /api/v4/projects/<full path>` without any credential is a project lookup (a gate without
   * the service token asks so; GitLab shows public projects only), not forwarded traffic.
   */
  readonly anonymousPathLookups?: boolean
  readonly jobs?: Record<string, FakeJob>
  readonly projects?: readonly FakeProject[]
  readonly groups?: readonly FakeGroup[]
  readonly jwks?: JSONWebKeySet
  /**
   * User tokens (PRIVATE-TOKEN or Authorization: Bearer): `GET /api/v4/user` and `GET /api/v4/projects/:id`
   * (id or URL-encoded path) answer as that user, with `permissions` from `access` (project id →
   * project_access level) and `groupAccess` (project id → group_access level).
   */
  readonly users?: Record<string, FakeUser>
  /** Packages of the projects (listed by `GET /groups/:id/packages`, the group's subgroups included). */
  readonly packages?: readonly FakePackage[]
  /** GitLab's relative URL root (GATE_RELATIVE_URL_ROOT): the lookups the fake answers are served under it too. */
  readonly relativeUrlRoot?: string
  /** Old full paths of moved projects → project id: `GET /projects/<old path>` answers 301 to `/projects/<id>`. */
  readonly redirects?: Readonly<Record<string, number>>
  /** Paths of user namespaces (`GET /namespaces/:id` answers kind user). */
  readonly userNamespaces?: readonly string[]
  /**
   * Maven virtual registries by id: their upstreams as `GET
   * /virtual_registries/packages/maven/registries/:id/upstreams` lists them (`upstream_type`
   * `remote`, or `local` with `local_project_id` or `local_group_id`).
   */
  readonly virtualRegistries?: Readonly<Record<number, ReadonlyArray<Readonly<Record<string, unknown>>>>>
  /** Pipelines by id: their project, job ids and bridge ids. */
  readonly pipelines?: Readonly<Record<number, { readonly projectId: number, readonly jobs: readonly number[], readonly bridges?: readonly number[] }>>
  /** Largest page served (GitLab's is 100), to make lists span pages. */
  readonly maxPerPage?: number
  /** The instance setting npm_package_requests_forwarding (GitLab's default: on): npm metadata of no project is a 302 to npmjs.org, else a 404. */
  readonly npmForwarding?: boolean
  /**
   * What the service token is. Default admin. `admin_without_admin_mode`: an administrator's token
   * without the `admin_mode` scope where Admin Mode is on, which GitLab shows only what a user sees.
   */
  readonly serviceRole?: ServiceRole
  /** Answers every other request (the gate's forwarded traffic); 404 when absent. The body is left unread for it. */
  readonly fallback?: (req: IncomingMessage, res: ServerResponse) => void
  /**
   * `GET /api/v4/personal_access_tokens/self` records by token (a fine-grained one with
   * `granular: true` and `granular_scopes`). A user's token (`users`) not listed here answers a
   * legacy record; any other token 401.
   */
  readonly accessTokens?: Readonly<Record<string, Readonly<Record<string, unknown>>>>
  /**
   * OAuth tokens (of `users`) and their scopes: `GET /oauth/token/info` (Doorkeeper, beside the
   * API) answers them to their bearer, any other token 401; `self` answers them 401, as GitLab's
   * PRIVATE-TOKEN lookup finds personal access tokens only.
   */
  readonly oauthTokens?: Readonly<Record<string, readonly string[]>>
  /**
   * Deploy tokens: GitLab's API signs no user in with one, so `GET /api/v4/projects/:id` with it
   * as PRIVATE-TOKEN or Bearer answers 401 (forwarded package traffic still reaches `fallback`).
   */
  readonly deployTokens?: readonly string[]
  /**
   * The service token's `POST /api/graphql` is GraphQL's `package(id:)` query (packageAnswer),
   * not forwarded traffic.
   */
  readonly packageQueries?: boolean
}

export interface FakeGitlab {
  readonly url: string
  readonly serviceToken: string
  /** Job tokens (the exact string a job sends) to their jobs. */
  readonly jobs: Map<string, FakeJob>
  readonly projects: Map<number, FakeProject>
  readonly groups: Map<number, FakeGroup>
  /** The options' packages, redirects, user namespaces and pipelines, to change while a test runs. */
  readonly packages: FakePackage[]
  readonly redirects: Map<string, number>
  /**
   * How paths are matched case-insensitively, as the database's LOWER() folds them: `unicode`
   * (any collation but "C": the Kelvin sign is "k"; the default) or `c` (ASCII letters only).
   */
  collation: 'unicode' | 'c'
  /**
   * A user's `GET /projects/<id>` answered with another project, as that user sees it (a cache in
   * front of GitLab that mixed answers up): asked id → the id answered.
   */
  readonly mixedUp: Map<number, number>
  readonly userNamespaces: Set<string>
  readonly virtualRegistries: Map<number, ReadonlyArray<Readonly<Record<string, unknown>>>>
  readonly pipelines: Map<number, { readonly projectId: number, readonly jobs: readonly number[], readonly bridges?: readonly number[] }>
  maxPerPage: number
  npmForwarding: boolean
  serviceRole: ServiceRole
  /**
   * Projects the service token cannot read (a token narrower than an administrator's): `GET
   * /projects/:id` with it answers 404, and its package and project lists leave them out.
   */
  readonly serviceHidden: Set<number>
  /**
   * Users GitLab marks `external`: `GET /users/:id` shows the flag to a service token that can read
   * all resources (UserDetailsWithAdmin, through UserPublic), and leaves it out otherwise.
   */
  readonly externalUsers: Set<number>
  readonly calls: Record<Endpoint, number>
  /** Request targets seen, to check that no token ever travels in a URL. */
  readonly targets: string[]
  jwks: JSONWebKeySet
  /** Wait this long before answering any request. */
  delayMs: number
  /** Answer this status instead, per endpoint. */
  readonly failWith: Partial<Record<Endpoint, number>>
  /** Endpoints whose requests are held unanswered (a GitLab that hangs) until release() or close(). */
  readonly hold: Set<Endpoint>
  /**
   * Endpoints whose answers are read on arrival, as GitLab reads its database then, but sent
   * only on release() (a slow answer, such as the npm metadata of a package of many versions).
   */
  readonly late: Set<Endpoint>
  /** Answers every held request. */
  release (): void
  /** `GET /personal_access_tokens/self` calls, and a status to answer them with instead. */
  tokenSelfCalls: number
  tokenSelfFailWith: number | undefined
  /** The service token's GraphQL `package(id:)` calls (with `packageQueries`), and a status to answer them with instead. */
  packageQueryCalls: number
  packageQueryFailWith: number | undefined
  resetCalls (): void
  close (): Promise<void>
}

/** Nested groups, outermost first: `groupChain([1, 'acme'], [2, 'platform'])`. */
export function groupChain (...levels: Array<[number, string]>): FakeGroup[] {
  const groups: FakeGroup[] = []
  let parent: FakeGroup | null = null
  for (const [id, path] of levels) {
    const g: FakeGroup = { id, fullPath: parent === null ? path : `${parent.fullPath}/${path}`, parentId: parent?.id ?? null }
    groups.push(g)
    parent = g
  }
  return groups
}

/**
 * The format GitLab's Grape answers a path in: its extension wins over Accept and `?format=`
 * (Formatter#format_from_extension: the raw path split on '.', its last part when a content type
 * the API declares), and GitLab's API declares text/plain besides JSON. So a path that ends in
 * `.txt` (`/projects/acme%2Flib.txt`, project acme/lib.txt) is answered as text; `%2E` is no
 * extension. Ruby's split drops empty trailing parts (`lib.txt.` ends in `txt` too).
 */
export function grapeFormat (target: string): 'json' | 'txt' {
  const parts = target.split('?')[0]!.split('.')
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop()
  return parts.length > 1 && parts[parts.length - 1] === 'txt' ? 'txt' : 'json'
}

/** A JSON answer as Grape's text formatter writes it (the object's Ruby `to_s`): no JSON. */
export function asRubyText (json: string): string {
  return json.replace(/":/g, '"=>')
}

export async function startFakeGitlab (options: FakeGitlabOptions = {}): Promise<FakeGitlab> {
  const held: Array<() => void> = []
  /** Answers to requests whose path asks Grape for text (grapeFormat). */
  const textAnswers = new WeakSet<object>()
  const fake: Omit<FakeGitlab, 'url' | 'close'> = {
    serviceToken: options.serviceToken ?? 'glpat-service-token',
    jobs: new Map(Object.entries(options.jobs ?? {})),
    projects: new Map((options.projects ?? []).map(p => [p.id, p])),
    groups: new Map((options.groups ?? []).map(g => [g.id, g])),
    packages: [...(options.packages ?? [])],
    redirects: new Map(Object.entries(options.redirects ?? {}).map(([old, id]) => [old.toLowerCase(), id])),
    collation: 'unicode',
    mixedUp: new Map(),
    userNamespaces: new Set((options.userNamespaces ?? []).map(u => u.toLowerCase())),
    virtualRegistries: new Map(Object.entries(options.virtualRegistries ?? {}).map(([id, upstreams]) => [Number(id), upstreams])),
    pipelines: new Map(Object.entries(options.pipelines ?? {}).map(([id, p]) => [Number(id), p])),
    maxPerPage: options.maxPerPage ?? 100,
    npmForwarding: options.npmForwarding ?? true,
    serviceRole: options.serviceRole ?? 'admin',
    serviceHidden: new Set(),
    externalUsers: new Set(),
    calls: { job: 0, project: 0, group: 0, jwks: 0, packages: 0, group_projects: 0, npm_metadata: 0, namespace: 0, pipeline: 0, service_user: 0, registry_upstreams: 0, job_user: 0, token_self: 0, package_query: 0 },
    targets: [],
    jwks: options.jwks ?? { keys: [] },
    delayMs: 0,
    failWith: {},
    hold: new Set<Endpoint>(),
    late: new Set<Endpoint>(),
    release () {
      for (const answerHeld of held.splice(0)) answerHeld()
    },
    tokenSelfCalls: 0,
    tokenSelfFailWith: undefined,
    packageQueryCalls: 0,
    packageQueryFailWith: undefined,
    resetCalls () {
      for (const k of Object.keys(this.calls) as Endpoint[]) this.calls[k] = 0
      this.targets.length = 0
    }
  }

  const send = (res: ServerResponse, status: number, body: unknown): void => {
    if (res.destroyed) return // closed while a delayed answer waited
    const asText = textAnswers.has(res)
    const text = asText ? asRubyText(JSON.stringify(body)) : JSON.stringify(body)
    res.writeHead(status, { 'content-type': asText ? 'text/plain' : 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }
  const unauthorized = { message: '401 Unauthorized' }
  const userOf = (req: IncomingMessage): FakeUser | undefined => {
    const bearer = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''))?.[1]
    const token = req.headers['private-token'] ?? bearer ?? sessionOf(req)
    return typeof token === 'string' ? options.users?.[token] : undefined
  }
  /** A signed-in browser session: the `_gitlab_session` cookie (names percent-decoded, as Rack reads them) holds a user's token. */
  const sessionOf = (req: IncomingMessage): string | undefined => {
    for (const pair of String(req.headers.cookie ?? '').split(/; */)) {
      const at = pair.indexOf('=')
      if (at > 0 && decodeURIComponent(pair.slice(0, at)) === '_gitlab_session') return pair.slice(at + 1)
    }
    return undefined
  }

  /** The endpoint a request is for, and the id in its path. */
  const classify = (req: IncomingMessage): { endpoint: Endpoint | null, id: number } => {
    const path = new URL(req.url ?? '/', 'http://fake').pathname
    let m: RegExpExecArray | null
    if (req.method !== 'GET') return { endpoint: null, id: 0 }
    if (path === '/api/v4/job') return { endpoint: 'job', id: 0 }
    if (/^\/api\/v4\/groups\/[^/]+\/packages$/.test(path)) return { endpoint: 'packages', id: 0 }
    // Only the service token's: a job's package list is the gate's forwarded traffic.
    if (req.headers['private-token'] === fake.serviceToken && /^\/api\/v4\/projects\/\d+\/packages$/.test(path)) return { endpoint: 'packages', id: 0 }
    if (/^\/api\/v4\/groups\/[^/]+\/projects$/.test(path)) return { endpoint: 'group_projects', id: 0 }
    // Only the service token's: a job's npm requests are the gate's forwarded traffic.
    if (req.headers['private-token'] === fake.serviceToken && /^\/api\/v4\/(?:groups\/[^/]+\/-\/)?packages\/npm\/[^/]+$/.test(path)) return { endpoint: 'npm_metadata', id: 0 }
    if (/^\/api\/v4\/namespaces\/[^/]+$/.test(path)) return { endpoint: 'namespace', id: 0 }
    // Only the service token's: a job's or a user's listing is the gate's forwarded traffic.
    if (req.headers['private-token'] === fake.serviceToken && (m = /^\/api\/v4\/virtual_registries\/packages\/maven\/registries\/(\d+)\/upstreams$/.exec(path)) !== null) return { endpoint: 'registry_upstreams', id: Number(m[1]) }
    if (/^\/api\/v4\/projects\/\d+\/pipelines\/\d+\/(?:jobs|bridges)$/.test(path)) return { endpoint: 'pipeline', id: 0 }
    if (path === '/api/v4/user' && req.headers['private-token'] === fake.serviceToken) return { endpoint: 'service_user', id: 0 }
    if (path === '/api/v4/users/1' && req.headers['private-token'] === fake.serviceToken) return { endpoint: 'service_user', id: 1 }
    if ((m = /^\/api\/v4\/users\/(\d+)$/.exec(path)) !== null && req.headers['private-token'] === fake.serviceToken) return { endpoint: 'job_user', id: Number(m[1]) }
    const bare = options.anonymousPathLookups === true && req.headers['private-token'] === undefined && req.headers.authorization === undefined && req.headers['job-token'] === undefined
    if (userOf(req) !== undefined || req.headers['private-token'] === fake.serviceToken || bare) {
      if (path === '/api/v4/user' && userOf(req) !== undefined) return { endpoint: 'project', id: -2 }
      if ((m = /^\/api\/v4\/projects\/([^/]+)$/.exec(path)) !== null) {
        const key = decodeURIComponent(m[1]!)
        const lower = (s: string): string => fake.collation === 'c' ? s.replace(/[A-Z]+/g, l => l.toLowerCase()) : s.toLowerCase()
        const byPath = [...fake.projects.values()].find(p => lower(p.pathWithNamespace) === lower(key))
        return { endpoint: 'project', id: /^\d+$/.test(key) ? Number(key) : byPath?.id ?? -1 }
      }
    }
    if ((m = /^\/api\/v4\/projects\/(\d+)$/.exec(path)) !== null) return { endpoint: 'project', id: Number(m[1]) }
    if ((m = /^\/api\/v4\/groups\/(\d+)$/.exec(path)) !== null) return { endpoint: 'group', id: Number(m[1]) }
    if (path === '/oauth/discovery/keys') return { endpoint: 'jwks', id: 0 }
    return { endpoint: null, id: 0 }
  }

  const answer = (req: IncomingMessage, res: ServerResponse, endpoint: Endpoint | null, id: number): void => {
    if (endpoint === null) {
      const bearer = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''))?.[1]
      const token = req.headers['private-token'] ?? bearer
      if (req.method === 'GET' && typeof token === 'string' && options.deployTokens?.includes(token) === true && /^\/api\/v4\/(?:projects\/[^/]+|user)$/.test(new URL(req.url ?? '/', 'http://fake').pathname)) {
        req.resume()
        send(res, 401, unauthorized)
        return
      }
      if (options.packageQueries === true && req.method === 'POST' && new URL(req.url ?? '/', 'http://fake').pathname === '/api/graphql' && req.headers['private-token'] === fake.serviceToken) {
        fake.packageQueryCalls++
        fake.calls.package_query++
        void bodyText(req).then(text => {
          const answerIt = (): void => {
            if (fake.packageQueryFailWith !== undefined) send(res, fake.packageQueryFailWith, { message: `${fake.packageQueryFailWith}` })
            else packageAnswer(res, text)
          }
          // Held: answered on release(), as the other endpoints are.
          if (fake.hold.has('package_query')) held.push(answerIt)
          else answerIt()
        }, () => {})
        return
      }
      if (req.method === 'GET' && new URL(req.url ?? '/', 'http://fake').pathname === '/api/v4/personal_access_tokens/self') {
        req.resume()
        fake.tokenSelfCalls++
        fake.calls.token_self++
        const tokenSelf = (): void => {
          if (fake.tokenSelfFailWith !== undefined) { send(res, fake.tokenSelfFailWith, { message: `${fake.tokenSelfFailWith}` }); return }
          const token = req.headers['private-token'] ?? /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''))?.[1]
          const listed = typeof token === 'string' ? options.accessTokens?.[token] : undefined
          const user = userOf(req)
          if (typeof token === 'string' && options.oauthTokens?.[token] !== undefined) send(res, 401, unauthorized)
          else if (listed !== undefined) send(res, 200, listed)
          else if (user !== undefined) send(res, 200, { id: 5000 + user.id, name: 'token', user_id: user.id, scopes: ['api'], active: true, revoked: false })
          else send(res, 401, unauthorized)
        }
        // Held: answered on release(), as the other endpoints are.
        if (fake.hold.has('token_self')) held.push(tokenSelf)
        else tokenSelf()
        return
      }
      if (req.method === 'GET' && new URL(req.url ?? '/', 'http://fake').pathname === '/oauth/token/info') {
        req.resume()
        const bearer = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''))?.[1]
        const scopes = bearer === undefined ? undefined : options.oauthTokens?.[bearer]
        const owner = bearer === undefined ? undefined : options.users?.[bearer]
        if (scopes === undefined) send(res, 401, { error: 'invalid_token', error_description: 'The access token is invalid' })
        else send(res, 200, { resource_owner_id: owner?.id ?? null, scope: scopes, expires_in: 7200, application: { uid: 'fake-app' }, created_at: 1767225600, scopes, expires_in_seconds: 7200 })
        return
      }
      // Cookies that hold no session: GitLab shows no user for them.
      if (req.method === 'GET' && new URL(req.url ?? '/', 'http://fake').pathname === '/api/v4/user' && req.headers.cookie !== undefined && req.headers['private-token'] === undefined && req.headers.authorization === undefined) {
        req.resume()
        send(res, 401, unauthorized)
        return
      }
      if (options.fallback !== undefined) options.fallback(req, res)
      else send(res, 404, { message: '404 Not Found' })
      return
    }
    const failure = fake.failWith[endpoint]
    if (failure !== undefined) { send(res, failure, { message: `${failure}` }); return }

    switch (endpoint) {
      case 'service_user': {
        // GET /user: UserWithAdmin (is_admin, EE's is_auditor) to an administrator, whatever its
        // Admin Mode, else UserPublic (lib/api/users.rb). GET /users/:id: UserDetailsWithAdmin to a
        // caller that can read all resources (an administrator in Admin Mode, an auditor), else User.
        const admin = fake.serviceRole === 'admin' || fake.serviceRole === 'admin_without_admin_mode'
        const readsAll = fake.serviceRole === 'admin' || fake.serviceRole === 'auditor'
        const withAdmin = id === 0 ? admin : readsAll
        send(res, 200, { id: 1, username: 'gate-service', ...(withAdmin ? { is_admin: admin, is_auditor: fake.serviceRole === 'auditor' } : {}) })
        return
      }
      case 'job_user': {
        // The users the jobs run as (FakeJob.userId); GET /users/:id as for the service user above.
        if (![...fake.jobs.values()].some(j => j.userId === id)) { send(res, 404, { message: '404 User Not Found' }); return }
        const readsAll = fake.serviceRole === 'admin' || fake.serviceRole === 'auditor'
        send(res, 200, { id, username: `user${id}`, ...(readsAll ? { is_admin: false, external: fake.externalUsers.has(id) } : {}) })
        return
      }
      case 'job': {
        const token = req.headers['job-token']
        const job = typeof token === 'string' ? fake.jobs.get(token) : undefined
        if (job === undefined) { send(res, 401, unauthorized); return }
        send(res, 200, {
          id: job.id,
          status: job.status,
          name: 'build',
          stage: 'test',
          web_url: `http://fake/jobs/${job.id}`,
          pipeline: { id: 1000 + job.id, project_id: job.projectId, status: job.status },
          user: { id: job.userId, username: `user${job.userId}` }
        })
        return
      }
      case 'project':
      case 'group': {
        const user = userOf(req)
        if (endpoint === 'project' && user !== undefined) {
          if (user.apiDenied === true) {
            send(res, 403, { message: `403 Forbidden - You (@${user.username}) must accept the Terms of Service in order to perform this action. To accept these terms, please access /-/users/terms in a web browser.` })
            return
          }
          if (id === -2) {
            if (user.userHidden === true) send(res, 403, { error: 'insufficient_granular_scope', error_description: 'Access denied: Your Personal Access Token lacks the required permissions' })
            else send(res, 200, { id: user.id, username: user.username })
            return
          }
          if (user.projectsRefused === true) {
            send(res, 403, { error: 'insufficient_scope', error_description: 'The request requires higher privileges than provided by the access token.', scope: 'api read_api' })
            return
          }
          const shown = fake.mixedUp.get(id) ?? id
          const p = fake.projects.get(shown)
          const movedFrom = movedTo(req)
          if (p === undefined && movedFrom !== undefined) { redirectToId(res, movedFrom); return }
          const level = user.access?.[shown]
          const groupLevel = user.groupAccess?.[shown]
          if (p === undefined || (level === undefined && groupLevel === undefined)) { send(res, 404, { message: '404 Project Not Found' }); return }
          send(res, 200, {
            id: p.id,
            path_with_namespace: p.pathWithNamespace,
            permissions: { project_access: level === undefined ? null : { access_level: level }, group_access: groupLevel === undefined ? null : { access_level: groupLevel } }
          })
          return
        }
        // Without a token GitLab shows public projects only.
        const anonymous = endpoint === 'project' && req.headers['private-token'] === undefined && req.headers.authorization === undefined
        if (req.headers['private-token'] !== fake.serviceToken && !anonymous) { send(res, 401, unauthorized); return }
        if (endpoint === 'project') {
          const p = (anonymous && fake.projects.get(id)?.visibility !== 'public') || fake.serviceHidden.has(id) ? undefined : fake.projects.get(id)
          const moved = movedTo(req)
          if (p === undefined && moved !== undefined) { redirectToId(res, moved); return }
          if (p === undefined) { send(res, 404, { message: '404 Project Not Found' }); return }
          send(res, 200, {
            id: p.id,
            path: p.pathWithNamespace.slice(p.pathWithNamespace.lastIndexOf('/') + 1),
            path_with_namespace: p.pathWithNamespace,
            visibility: p.visibility ?? 'private',
            ...Object.fromEntries(FEATURES.map(f => [`${f}_access_level`, p.accessLevels?.[f] ?? 'enabled'])),
            public_jobs: true, // "Public pipelines", on for a new project
            namespace: { id: p.namespace.id, kind: p.namespace.kind, full_path: p.namespace.fullPath, parent_id: p.namespace.parentId }
          })
        } else {
          const g = fake.groups.get(id)
          if (g === undefined) { send(res, 404, { message: '404 Group Not Found' }); return }
          send(res, 200, { id: g.id, full_path: g.fullPath, parent_id: g.parentId })
        }
        return
      }
      case 'jwks':
        send(res, 200, fake.jwks)
        return
      case 'packages':
      case 'group_projects':
      case 'namespace':
      case 'pipeline':
        if (req.headers['private-token'] !== fake.serviceToken) { send(res, 401, unauthorized); return }
        lookupAnswer(req, res, endpoint)
        return
      case 'npm_metadata':
        npmMetadata(req, res)
        return
      case 'registry_upstreams': {
        const upstreams = fake.virtualRegistries.get(id)
        if (upstreams === undefined) { send(res, 404, { message: '404 Registry Not Found' }); return }
        sendPage(res, new URL(req.url ?? '/', 'http://fake'), [...upstreams])
      }
    }
  }

  const bodyText = async (req: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  }
  /**
   * `query($id: PackagesPackageID!) { package(id: $id) { packageType project { id } } }`: GitLab's
   * PackageDetailsResolver shows packages in the default or deprecated state only, and none of a
   * project the service token cannot read; an ID that is not a package's global ID is an error.
   */
  const packageAnswer = (res: ServerResponse, text: string): void => {
    let id: unknown
    try {
      id = (JSON.parse(text) as { variables?: { id?: unknown } }).variables?.id
    } catch {}
    const n = /^gid:\/\/gitlab\/Packages::Package\/(\d+)$/.exec(typeof id === 'string' ? id : '')?.[1]
    if (n === undefined) { send(res, 200, { errors: [{ message: `"${String(id)}" does not represent an instance of Packages::Package` }] }); return }
    const found = fake.packages.find(p => p.id === Number(n))
    const shown = found !== undefined && ['default', 'deprecated'].includes(found.status ?? 'default') && !fake.serviceHidden.has(found.projectId)
    const project = found === undefined ? undefined : fake.projects.get(found.projectId)
    send(res, 200, { data: { package: shown ? { packageType: found.packageType.toUpperCase(), project: { id: `gid://gitlab/Project/${found.projectId}`, fullPath: project?.pathWithNamespace ?? null } } : null } })
  }

  const origin = (): string => `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  /** GitLab answers a moved project's old path with a redirect to its id (lib/api/helpers.rb). */
  const redirectToId = (res: ServerResponse, id: number): void => {
    res.writeHead(301, { location: `${origin()}/api/v4/projects/${id}`, 'content-length': 0 })
    res.end()
  }
  const movedTo = (req: IncomingMessage): number | undefined => {
    const m = /^\/api\/v4\/projects\/([^/]+)$/.exec(new URL(req.url ?? '/', 'http://fake').pathname)
    const key = decodeURIComponent(m?.[1] ?? '').toLowerCase()
    return fake.redirects.get(key)
  }
  const groupByKey = (key: string): FakeGroup | undefined =>
    /^\d+$/.test(key) ? fake.groups.get(Number(key)) : [...fake.groups.values()].find(g => g.fullPath.toLowerCase() === key.toLowerCase())

  /** A JSON array, one page of it, with GitLab's offset pagination headers. */
  const sendPage = (res: ServerResponse, url: URL, items: readonly unknown[]): void => {
    const perPage = Math.min(Number(url.searchParams.get('per_page') ?? 20) || 20, 100, fake.maxPerPage)
    const page = Math.max(Number(url.searchParams.get('page') ?? 1) || 1, 1)
    const pages = Math.max(Math.ceil(items.length / perPage), 1)
    const asText = textAnswers.has(res)
    const json = JSON.stringify(items.slice((page - 1) * perPage, page * perPage))
    const text = asText ? asRubyText(json) : json
    const next = page < pages ? String(page + 1) : ''
    const headers: Record<string, string | number> = {
      'content-type': asText ? 'text/plain' : 'application/json', 'content-length': Buffer.byteLength(text),
      'x-page': page, 'x-per-page': perPage, 'x-total': items.length, 'x-total-pages': pages, 'x-next-page': next, 'x-prev-page': page > 1 ? String(page - 1) : ''
    }
    if (next !== '') {
      const nextUrl = new URL(url.href)
      nextUrl.searchParams.set('page', next)
      headers.link = `<${origin()}${nextUrl.pathname}${nextUrl.search}>; rel="next"`
    }
    res.writeHead(200, headers)
    res.end(text)
  }

  const lookupAnswer = (req: IncomingMessage, res: ServerResponse, endpoint: 'packages' | 'group_projects' | 'namespace' | 'pipeline'): void => {
    const url = new URL(req.url ?? '/', 'http://fake')
    const segments = url.pathname.split('/')
    if (endpoint === 'namespace') {
      const key = decodeURIComponent(segments[4]!)
      const group = groupByKey(key)
      if (group !== undefined) { send(res, 200, { id: group.id, kind: 'group', full_path: group.fullPath }); return }
      if (fake.userNamespaces.has(key.toLowerCase())) { send(res, 200, { id: 9000, kind: 'user', full_path: key }); return }
      send(res, 404, { message: '404 Namespace Not Found' })
      return
    }
    if (endpoint === 'pipeline') {
      const pipeline = fake.pipelines.get(Number(segments[6]))
      if (pipeline === undefined || pipeline.projectId !== Number(segments[4])) { send(res, 404, { message: '404 Not found' }); return }
      const ids = segments[7] === 'jobs' ? pipeline.jobs : pipeline.bridges ?? []
      sendPage(res, url, ids.map(id => ({ id, status: 'success' })))
      return
    }
    const q = url.searchParams
    // GET /projects/:id/packages (lib/api/project_packages.rb): that project's packages, the
    // same filters, whatever its repository feature.
    const ofProject = segments[3] === 'projects' ? Number(segments[4]) : undefined
    if (ofProject !== undefined && (!fake.projects.has(ofProject) || fake.serviceHidden.has(ofProject))) { send(res, 404, { message: '404 Project Not Found' }); return }
    // GET /groups/:id/packages (lib/api/group_packages.rb): subgroups included unless
    // exclude_subgroups; package_name is a fuzzy (substring) filter; versionless packages only
    // with include_versionless; displayable statuses only unless `status` names one; order_by
    // created_at, sort asc by default.
    const group = ofProject === undefined ? groupByKey(decodeURIComponent(segments[4]!)) : undefined
    if (ofProject === undefined && group === undefined) { send(res, 404, { message: '404 Group Not Found' }); return }
    const inGroup = (projectId: number): boolean => {
      if (ofProject !== undefined) return projectId === ofProject
      const ns = fake.projects.get(projectId)?.namespace.fullPath.toLowerCase()
      const root = group!.fullPath.toLowerCase()
      return ns !== undefined && (ns === root || (q.get('exclude_subgroups') !== 'true' && ns.startsWith(`${root}/`)))
    }
    if (endpoint === 'group_projects') {
      // GET /groups/:id/projects (lib/api/groups.rb): include_subgroups, with_shared (the fake
      // shares none), each project with its `*_access_level`s.
      const projects = [...fake.projects.values()].filter(p => {
        if (fake.serviceHidden.has(p.id)) return false
        const ns = p.namespace.fullPath.toLowerCase()
        const root = group!.fullPath.toLowerCase()
        return ns === root || (q.get('include_subgroups') === 'true' && ns.startsWith(`${root}/`))
      })
      sendPage(res, url, projects.map(p => ({ id: p.id, path_with_namespace: p.pathWithNamespace, ...Object.fromEntries(FEATURES.map(f => [`${f}_access_level`, p.accessLevels?.[f] ?? 'enabled'])) })))
      return
    }
    const name = q.get('package_name')?.toLowerCase()
    // Packages::GroupPackagesFinder keeps projects with_feature_available_for_user(:repository):
    // for an administrator, those whose repository is not disabled.
    const repository = (projectId: number): boolean => ofProject !== undefined || fake.projects.get(projectId)?.accessLevels?.repository !== 'disabled'
    let list = fake.packages.filter(p => inGroup(p.projectId) && repository(p.projectId) && !fake.serviceHidden.has(p.projectId) &&
      (q.get('package_type') === null || p.packageType === q.get('package_type')) &&
      (name === undefined || p.name.toLowerCase().includes(name)) &&
      (p.version !== null || q.get('include_versionless') === 'true') &&
      (q.get('status') === null ? DISPLAYABLE.has(p.status ?? 'default') : (p.status ?? 'default') === q.get('status')))
    const desc = q.get('sort') === 'desc'
    list = [...list].sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id - b.id) * (desc ? -1 : 1))
    sendPage(res, url, list.map(p => ({
      id: p.id, name: p.name, version: p.version, package_type: p.packageType, status: p.status ?? 'default', created_at: p.createdAt,
      project_id: p.projectId, project_path: fake.projects.get(p.projectId)?.pathWithNamespace
    })))
  }

  // GitLab's npm metadata endpoint as the service token asks it (lib/api/concerns/packages/
  // npm_endpoints.rb, lib/api/helpers/packages/npm.rb): the root namespace of the @scope found by
  // path (instance) or the group by id or path; the installable (default, hidden, deprecated) npm packages of exactly that name
  // in any project under it (Packages::Npm::PackageFinder, no feature filter); none: a 302 to
  // npmjs.org (forwarding) or 404. The project of the last package (highest id) has its package
  // registry disabled: 403. Else the last package of each version, as
  // npm_allow_packages_in_multiple_projects lists them, each tarball naming its project, of the
  // projects the token is shown (serviceHidden: not).
  const npmMetadata = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://fake')
    const segments = url.pathname.split('/')
    const name = decodeURIComponent(segments[segments.length - 1]!)
    let root: string | undefined
    if (segments[3] === 'groups') root = groupByKey(decodeURIComponent(segments[4]!))?.fullPath
    else {
      const scope = /^@([^/]+)\/./.exec(name)?.[1]?.toLowerCase()
      if (scope !== undefined) root = [...fake.groups.values()].find(g => g.parentId === null && g.fullPath.toLowerCase() === scope)?.fullPath ?? (fake.userNamespaces.has(scope) ? scope : undefined)
    }
    const under = (projectId: number): boolean => {
      const ns = fake.projects.get(projectId)?.namespace.fullPath.toLowerCase()
      const r = root?.toLowerCase()
      return ns !== undefined && r !== undefined && (ns === r || ns.startsWith(`${r}/`))
    }
    const found: FakePackage[] = []
    for (const p of [...fake.packages]) {
      if (p.packageType === 'npm' && p.name === name && under(p.projectId) && INSTALLABLE.has(p.status ?? 'default')) found.push(p)
    }
    found.sort((a, b) => a.id - b.id)
    const last = found[found.length - 1]
    if (last === undefined) {
      if (fake.npmForwarding) {
        res.writeHead(302, { location: `https://registry.npmjs.org/${name}`, 'content-length': 0 })
        res.end()
      } else send(res, 404, { message: '404 Project Not Found' })
      return
    }
    if (fake.projects.get(last.projectId)?.accessLevels?.package_registry === 'disabled') { send(res, 403, { message: '403 Forbidden' }); return }
    // The versions listed are those of the packages the caller (the service token) can read
    // (Packages::Npm::PackagesForUserFinder); none of those there are: 403.
    const shown = found.filter(p => !fake.serviceHidden.has(p.projectId))
    if (shown.length === 0) { send(res, 403, { message: '403 Forbidden' }); return }
    const byVersion = new Map<string, FakePackage>()
    for (const p of shown) byVersion.set(String(p.version), p)
    const versions: Record<string, unknown> = {}
    for (const p of [...byVersion.values()].sort((a, b) => a.id - b.id)) {
      const file = `${name.slice(name.indexOf('/') + 1)}-${String(p.version)}.tgz`
      versions[String(p.version)] = { name, version: p.version, dist: { shasum: 'f'.repeat(40), tarball: `${origin()}/api/v4/projects/${p.projectId}/packages/npm/${name}/-/${file}` } }
    }
    send(res, 200, { name, versions, 'dist-tags': { latest: last.version } })
  }

  const server = createServer((req, res) => {
    fake.targets.push(req.url ?? '')
    // The gate's own lookups under GitLab's relative URL root are answered as at the top.
    const root = options.relativeUrlRoot ?? ''
    const sent = req.url ?? ''
    if (root !== '' && sent.startsWith(`${root}/api/v4/`)) req.url = sent.slice(root.length)
    if (grapeFormat(sent) === 'txt') textAnswers.add(res)
    // Counted on arrival, so a call the client gave up on still counts.
    const { endpoint, id } = classify(req)
    if (endpoint === null) req.url = sent
    if (endpoint !== null) fake.calls[endpoint]++
    if (endpoint !== null || options.fallback === undefined) req.resume()
    if (endpoint !== null && fake.late.has(endpoint)) {
      const steps: Array<() => void> = []
      const later = (method: 'writeHead' | 'end') => (...args: unknown[]): unknown => {
        steps.push(() => { (res[method] as (...a: unknown[]) => unknown).apply(res, args) })
        return recorder
      }
      const recorder = { get destroyed () { return res.destroyed }, writeHead: later('writeHead'), end: later('end') }
      if (textAnswers.has(res)) textAnswers.add(recorder)
      answer(req, recorder as unknown as ServerResponse, endpoint, id)
      held.push(() => { if (!res.destroyed) for (const step of steps) step() })
    } else if (endpoint !== null && fake.hold.has(endpoint)) held.push(() => { answer(req, res, endpoint, id) })
    else if (fake.delayMs > 0) setTimeout(() => { answer(req, res, endpoint, id) }, fake.delayMs)
    else answer(req, res, endpoint, id)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      held.length = 0
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  })
}
