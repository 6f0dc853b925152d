// One configuration schema: every setting once, with its environment variable, default and
// check. Environment variable names are a public contract (users' manifests depend on them).
// `loadConfig` validates everything at start-up and returns a frozen object; a bad value stops
// the start with a message naming the variable. Only main.ts reads process.env.

import { readFileSync } from 'node:fs'
import { BlockList, isIP } from 'node:net'
import { isRecognisedInstancePrefix } from './identity/token-shape.ts'

export class ConfigError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

export interface ListenAddress { readonly host: string, readonly port: number }

type Kind = 'string' | 'url' | 'listen' | 'int' | 'ratio' | 'bool' | 'list' | 'enum'

interface Setting<K extends Kind = Kind> {
  readonly env: string
  readonly kind: K
  readonly description: string
  readonly default?: string
  readonly values?: readonly string[]
  readonly min?: number
  readonly secret?: boolean
}

/** The shortest GATE_ADMIN_TOKEN a start takes. */
export const MIN_ADMIN_TOKEN_CHARS = 20

/** The longest delay Node's timers take. */
const MAX_TIMER_MS = 2 ** 31 - 1

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const

// The table. Keys are the config object's property names; `default` is written as the
// environment would write it, so `serve --help` shows what to type.
export const SETTINGS = {
  upstreamUrl: { env: 'GATE_UPSTREAM_URL', kind: 'url', description: 'GitLab API server the gate forwards to, e.g. http://gitlab-webservice:8181' },
  listen: { env: 'GATE_LISTEN', kind: 'listen', default: '0.0.0.0:8181', description: 'host:port the gate serves API traffic on' },
  healthListen: { env: 'GATE_HEALTH_LISTEN', kind: 'listen', default: '0.0.0.0:8182', description: 'host:port for /-/liveness, /-/readiness and /metrics' },
  authListen: { env: 'GATE_AUTH_LISTEN', kind: 'listen', description: 'host:port for the forward-auth decision endpoint (nginx auth_request, Traefik ForwardAuth, Envoy ext_authz); off when unset' },
  forwardAuthOriginal: { env: 'GATE_FORWARD_AUTH_ORIGINAL', kind: 'enum', values: ['auto', 'headers', 'request-line'], default: 'auto', description: "forward-auth: what names the request to decide. headers: X-Original-URI/-URL/-Method or X-Forwarded-Uri/-Method, always (nginx, ingress-nginx, Traefik, which ask on a path of their own); request-line: the check request's own method and target, those headers never read (Envoy ext_authz, which passes the client's headers on: set it there); auto: the headers where a trusted proxy gives them, else the line" },
  forwardAuthBodies: { env: 'GATE_FORWARD_AUTH_BODIES', kind: 'enum', values: ['hidden', 'declared', 'sent'], default: 'hidden', description: 'forward-auth: what a decision request without a body says of the original\'s body. hidden: nothing, so one may exist (ingress-nginx, Traefik without forwardBody, Envoy without with_request_body); declared: the proxy states it in X-Original-Content-Length and X-Original-Transfer-Encoding, replacing the client\'s (deploy/nginx/job-token-gate.conf; believed only where the headers name another request than the check request\'s own line, never under GATE_FORWARD_AUTH_ORIGINAL=request-line); sent: the proxy sends every body whole (Traefik forwardBody, Envoy with_request_body), so none was there' },
  mode: { env: 'GATE_MODE', kind: 'enum', values: ['enforce', 'shadow'], default: 'enforce', description: 'shadow: log and count denies as would_deny, forward anyway' },
  shadowResources: { env: 'GATE_SHADOW_RESOURCES', kind: 'list', default: '', description: 'catalog resources in shadow mode while the rest enforce (e.g. packages,releases); a name the catalog has no routes for stops the start' },
  relativeUrlRoot: { env: 'GATE_RELATIVE_URL_ROOT', kind: 'string', default: '', description: "GitLab's relative URL root, e.g. /gitlab: API requests arrive under it, and the gate's own calls go to GitLab's API at <GATE_UPSTREAM_URL><root>/api/v4" },
  nonApiJobTokens: { env: 'GATE_NON_API_JOB_TOKENS', kind: 'enum', values: ['forward', 'deny'], default: 'forward', description: 'job tokens on paths outside /api/v4 (git over HTTP, UI): forward or deny' },
  jobTokenOnOtherRoutes: { env: 'GATE_JOB_TOKEN_ON_OTHER_ROUTES', kind: 'enum', values: ['anonymous', 'refuse'], default: 'anonymous', description: 'a job token on an /api/v4 route that takes none: strip it and forward anonymously, as GitLab ignores it (anonymous; as Bearer or PRIVATE-TOKEN: 401), or refuse (403)' },
  unresolvedProject: { env: 'GATE_UNRESOLVED_PROJECT', kind: 'enum', values: ['resolve', 'defer', 'deny'], default: 'resolve', description: 'group and instance routes, whose project the URL does not tell: find it as GitLab does with GATE_SERVICE_TOKEN (resolve; what cannot be found is deferred), defer every one to upstream, or deny job tokens' },
  projectLookupTtlMs: { env: 'GATE_PROJECT_LOOKUP_TTL_MS', kind: 'int', min: 1, default: '60000', description: 'how long the project found for a group or instance route (a lookup that found none: GATE_PROJECT_NOT_FOUND_TTL_MS), or for a full path in a /projects/ URL, is kept, and an accessed project\'s visibility and feature levels' },
  projectNotFoundTtlMs: { env: 'GATE_PROJECT_NOT_FOUND_TTL_MS', kind: 'int', min: 1, default: '10000', description: 'how long a group or instance route\'s lookup that found no project is kept for reads (a write asks again), and the lists lookups read that GitLab may soon answer otherwise (a group\'s projects, package listings, a pipeline\'s jobs, a virtual registry\'s local projects): a project created or moved into a group is seen within it; at most GATE_PROJECT_LOOKUP_TTL_MS' },
  enforceInboundScope: { env: 'GATE_ENFORCE_INBOUND_SCOPE', kind: 'bool', default: 'true', description: "GitLab's instance setting enforce_ci_inbound_job_token_scope_enabled (true since 18.0)" },
  fineGrainedPolicies: { env: 'GATE_FINE_GRAINED_POLICIES', kind: 'enum', values: ['enforce', 'off'], default: 'enforce', description: 'fine-grained job token policies: enforce (GitLab 18.5 on), or off as on older GitLab, where fine-grained entries act as default permissions; a project may override it (job_token_policies_enabled of job_token_permissions)' },
  unknownProject: { env: 'GATE_UNKNOWN_PROJECT', kind: 'enum', values: ['empty_allowlist', 'allow'], default: 'empty_allowlist', description: 'accessed projects the store knows nothing of: only self access passes, or leave them to GitLab' },
  trustedProxies: { env: 'GATE_TRUSTED_PROXIES', kind: 'list', default: '127.0.0.1,::1', description: 'peers whose X-Forwarded-* and X-Original-* headers are trusted: addresses and CIDR ranges (10.0.0.0/8, fd00::/8); an IPv4-mapped IPv6 peer (::ffff:10.1.2.3) matches as IPv4' },
  redisUrl: { env: 'GATE_REDIS_URL', kind: 'string', description: 'redis://host:port/db for a single node; absent: the embedded memory store' },
  redisClusterNodes: { env: 'GATE_REDIS_CLUSTER_NODES', kind: 'list', default: '', description: 'host:port list: use Redis Cluster' },
  redisSentinels: { env: 'GATE_REDIS_SENTINELS', kind: 'list', default: '', description: 'host:port list: use Redis Sentinel' },
  redisSentinelName: { env: 'GATE_REDIS_SENTINEL_NAME', kind: 'string', default: 'mymaster', description: 'Sentinel master name' },
  redisUsername: { env: 'GATE_REDIS_USERNAME', kind: 'string', description: 'Cluster and Sentinel: the ACL user of the data nodes (GATE_REDIS_URL carries its own)' },
  redisPassword: { env: 'GATE_REDIS_PASSWORD', kind: 'string', secret: true, description: 'Cluster and Sentinel: the password of the data nodes (GATE_REDIS_URL carries its own)' },
  redisSentinelPassword: { env: 'GATE_REDIS_SENTINEL_PASSWORD', kind: 'string', secret: true, description: 'Sentinel: the password of the sentinels themselves' },
  redisTls: { env: 'GATE_REDIS_TLS', kind: 'bool', default: 'false', description: 'Cluster and Sentinel: connect to the data nodes over TLS (GATE_REDIS_URL: write rediss://)' },
  redisSentinelTls: { env: 'GATE_REDIS_SENTINEL_TLS', kind: 'bool', default: 'false', description: 'Sentinel: connect to the sentinels themselves over TLS' },
  redisTlsCaFile: { env: 'GATE_REDIS_TLS_CA_FILE', kind: 'string', description: "PEM file of the certificate authorities Redis's TLS certificates are checked against, in place of Node's; unset: Node's (and NODE_EXTRA_CA_CERTS)" },
  redisStoreId: { env: 'GATE_REDIS_STORE_ID', kind: 'string', description: "the Redis store's id, which its first start logs: set, a start on a store holding no marker or another id refuses it (GRANTS_STORE_LOST) rather than taking it for a new one; a new store is marked with `job-token-gate accept-store-loss --marker <id>`" },
  stateFile: { env: 'GATE_STATE_FILE', kind: 'string', description: 'memory store only: JSON file the grants are loaded from and saved to' },
  grantCacheTtlMs: { env: 'GATE_GRANT_CACHE_TTL_MS', kind: 'int', min: 0, default: '10000', description: 'how long a project\'s grants are trusted without asking the store' },
  grantStaleWindowMs: { env: 'GATE_GRANT_STALE_WINDOW_MS', kind: 'int', min: 0, default: '30000', description: 'how long past its TTL a cached entry is served while the store is down' },
  serviceToken: { env: 'GATE_SERVICE_TOKEN', kind: 'string', secret: true, description: 'token (sent as PRIVATE-TOKEN) to read projects and groups from GitLab' },
  instanceTokenPrefix: { env: 'GATE_INSTANCE_TOKEN_PREFIX', kind: 'string', description: "GitLab's instance_token_prefix, whose job tokens read <prefix>-glcbt-...; empty: none; unset: read from GitLab's application settings at start (needs an administrator's GATE_SERVICE_TOKEN). Logged at start; job tokens with any prefix are recognised either way" },
  adminToken: { env: 'GATE_ADMIN_TOKEN', kind: 'string', secret: true, description: 'operator token allowed to change any project\'s job token permissions; at least 20 characters (e.g. openssl rand -hex 32)' },
  identityResolver: { env: 'GATE_IDENTITY_RESOLVER', kind: 'enum', values: ['introspection', 'jwt'], default: 'introspection', description: 'how a job token becomes a job: ask GitLab, or verify a JWT locally' },
  jwtKey: { env: 'GATE_JWT_KEY', kind: 'string', description: 'PEM file, JWKS file or JWKS URL verifying job token JWTs' },
  jwtIssuer: { env: 'GATE_JWT_ISSUER', kind: 'string', description: 'expected iss of job token JWTs' },
  jwtAudience: { env: 'GATE_JWT_AUDIENCE', kind: 'string', description: 'expected aud of job token JWTs (local JWT resolver)' },
  identityCacheTtlMs: { env: 'GATE_IDENTITY_CACHE_TTL_MS', kind: 'int', min: 0, default: '30000', description: "longest time a resolved job token is trusted (a finished job's token passes for at most this long); 0: GitLab is asked on every request" },
  namespaceCacheTtlMs: { env: 'GATE_NAMESPACE_CACHE_TTL_MS', kind: 'int', min: 1, default: '60000', description: "how long a job project's path and ancestor groups, once read from GitLab, are kept: a project moved to another group stops being decided by the old group's allowlist entries within it" },
  identityCacheMaxTokens: { env: 'GATE_IDENTITY_CACHE_MAX_TOKENS', kind: 'int', min: 1, default: '10000', description: 'most resolved job tokens kept (about 360 bytes each); past it the least recently used is resolved again on its next request: keep it above the jobs that call the API at once' },
  identityTimeoutMs: { env: 'GATE_IDENTITY_TIMEOUT_MS', kind: 'int', min: 1, default: '5000', description: "timeout of one call to GitLab's API made by the gate itself (job token introspection, configuration API and role lookups)" },
  maxInspectedBodyBytes: { env: 'GATE_MAX_INSPECTED_BODY_BYTES', kind: 'int', min: 1, default: '65536', description: 'largest form/JSON body read to look for a job token; larger ones are refused (413)' },
  bodyBudgetBytes: { env: 'GATE_BODY_BUDGET_BYTES', kind: 'int', min: 0, default: '134217728', description: 'most bytes of request bodies held at once while their clients send them (bodies read to find a job token, GraphQL and configuration API bodies), 0 for no bound; past it such a request is refused (503). At least 2 MiB; keep it well under the memory limit' },
  upstreamConnections: { env: 'GATE_UPSTREAM_CONNECTIONS', kind: 'int', min: 0, default: '0', description: 'most connections to the upstream, 0 for no limit (the default): with a limit, that many requests whose clients stall (an upload that stops sending, an answer nobody reads) hold every other request back, unanswered, until the client timeout' },
  maxConnections: { env: 'GATE_MAX_CONNECTIONS', kind: 'int', min: 0, description: 'most client connections open at once on the API listener, and as many on the forward-auth listener; past it a new connection closes the one that has waited longest for a request (idle between keep-alive requests, or silent since it connected; job_token_gate_client_connections_idle_closed_total), or is closed as it arrives when every one is busy (job_token_gate_client_connections_dropped_total); both counted and logged. Unset: derived from the open files soft limit (Linux), leaving 128 descriptors to the process and, beside each connection\'s own, one for its upstream and one for its GitLab calls (both kept open for the next): (limit - 128) / 3, halved again when both listeners run; no limit where it cannot be read or is unlimited. The gate\'s connections to GitLab\'s API are bounded by as many as the listeners take. 0: no limit (at the open files limit, new connections on every listener, health included, are then closed unseen)' },
  upstreamHeadersTimeoutMs: { env: 'GATE_UPSTREAM_HEADERS_TIMEOUT_MS', kind: 'int', min: 1, default: '60000', description: 'wait for the upstream response headers (504 after)' },
  upstreamBodyTimeoutMs: { env: 'GATE_UPSTREAM_BODY_TIMEOUT_MS', kind: 'int', min: 1, default: '300000', description: 'longest pause inside the upstream response body' },
  clientKeepAliveTimeoutMs: { env: 'GATE_CLIENT_KEEPALIVE_TIMEOUT_MS', kind: 'int', min: 1, default: '75000', description: "how long an idle client connection is kept open for its next request; longer than the front proxy keeps idle connections to the gate (ingress-nginx and cloud load balancers: 60 s), or a request it sends as the gate closes one fails (502)" },
  clientTimeoutMs: { env: 'GATE_CLIENT_TIMEOUT_MS', kind: 'int', min: 1, default: '300000', description: 'longest silence on a client connection, either direction, before it is closed' },
  drainTimeoutMs: { env: 'GATE_DRAIN_TIMEOUT_MS', kind: 'int', min: 0, default: '30000', description: 'on SIGTERM, how long in-flight requests may finish' },
  catalogDir: { env: 'GATE_CATALOG_DIR', kind: 'string', description: 'catalog directory (default: the shipped catalog/)' },
  // GraphQL documents and GitLab's schema (src/graphql/documents.ts, src/graphql/schema.ts)
  graphqlSchema: { env: 'GATE_GRAPHQL_SCHEMA', kind: 'string', description: "GitLab's GraphQL schema as an SDL file (job-token-gate graphql-schema save), to check types and nested fields too; unset: mutations and root fields only" },
  graphqlMaxBytes: { env: 'GATE_GRAPHQL_MAX_BYTES', kind: 'int', min: 1, default: '40000', description: 'largest GraphQL document read, in UTF-8 bytes (GitLab refuses queries over 10,000 characters)' },
  graphqlMaxTokens: { env: 'GATE_GRAPHQL_MAX_TOKENS', kind: 'int', min: 1, default: '10000', description: 'most tokens in a GraphQL document (comments are none)' },
  graphqlMaxDepth: { env: 'GATE_GRAPHQL_MAX_DEPTH', kind: 'int', min: 1, default: '20', description: "deepest field nesting of a GraphQL document, fragments followed (GitLab's limit for signed-in users is 20)" },
  graphqlTokenRegistryFile: { env: 'GATE_GRAPHQL_TOKEN_REGISTRY_FILE', kind: 'string', description: 'JSON file of the fine-grained token registrations (by token SHA-256), read at start and saved on every change; a file the gate may not write (a mounted Secret, no owner write bit) is shared read-only and API changes are refused; unset: in memory, lost on restart' },
  // Observability (docs/observability.md)
  logLevel: { env: 'GATE_LOG_LEVEL', kind: 'enum', values: LOG_LEVELS, default: 'info', description: 'lowest level written to the log' },
  decisionLogLevel: { env: 'GATE_DECISION_LOG_LEVEL', kind: 'enum', values: LOG_LEVELS, default: 'info', description: 'level of the one-line-per-decision log (errors are at least warn)' },
  decisionLogRepeatWindowMs: { env: 'GATE_DECISION_LOG_REPEAT_WINDOW_MS', kind: 'int', min: 0, default: '60000', description: 'an allowed or no-job-token decision the same as one logged in the current window of this many ms (same decision, reason, job, accessed project, route, method and status) is not logged again; 0 logs every one; denies, would_deny, deferred and errors are always logged' },
  decisionLogSampleRate: { env: 'GATE_DECISION_LOG_SAMPLE_RATE', kind: 'ratio', default: '1', description: 'share of allowed and no-job-token decisions logged (after the repeat window), 0 to 1; denies, would_deny, deferred and errors are always logged' },
  logRawPath: { env: 'GATE_LOG_RAW_PATH', kind: 'bool', default: 'false', description: 'also log the canonical request path (never the query); by default only the route pattern' },
  usageRecording: { env: 'GATE_USAGE_RECORDING', kind: 'bool', default: 'true', description: 'record the policies allowed job-token requests use, for the least-privilege report' },
  usageFlushIntervalMs: { env: 'GATE_USAGE_FLUSH_INTERVAL_MS', kind: 'int', min: 10, default: '5000', description: 'how often recorded usage is written to the store' },
  usageMaxJobProjects: { env: 'GATE_USAGE_MAX_JOB_PROJECTS', kind: 'int', min: 1, default: '500', description: 'job projects recorded per accessed project and day; more are counted as dropped' },
  usageRetentionDays: { env: 'GATE_USAGE_RETENTION_DAYS', kind: 'int', min: 1, default: '90', description: 'days of usage kept' }
} as const satisfies Record<string, Setting>

type Settings = typeof SETTINGS
type ValueOf<S extends Setting> =
  S['kind'] extends 'int' | 'ratio' ? number
    : S['kind'] extends 'bool' ? boolean
      : S['kind'] extends 'list' ? readonly string[]
        : S['kind'] extends 'listen' ? ListenAddress
          : S['kind'] extends 'enum' ? (S extends { values: readonly string[] } ? S['values'][number] : string)
            : string

export type Config = { readonly [K in keyof Settings]: Settings[K] extends { default: string } ? ValueOf<Settings[K]> : ValueOf<Settings[K]> | undefined }

function parseListen (env: string, raw: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]+)|([0-9a-fA-F:]*:[0-9a-fA-F:]*)):(\d{1,5})$/.exec(raw)
  const host = m?.[1] ?? m?.[2] ?? m?.[3]
  const port = Number(m?.[4])
  if (m === null || host === undefined || port > 65535) throw new ConfigError(`${env} must be host:port (e.g. 0.0.0.0:8181), got ${JSON.stringify(raw)}`)
  return { host, port }
}

function parse (key: string, setting: Setting, raw: string): unknown {
  const { env } = setting
  switch (setting.kind) {
    case 'string': return raw
    case 'url': {
      let url: URL
      try {
        url = new URL(raw)
      } catch {
        throw new ConfigError(`${env} must be an absolute http(s) URL, got ${JSON.stringify(withoutCredentials(raw))}`)
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${env} must be an http or https URL, got ${JSON.stringify(withoutCredentials(raw))}`)
      // The origin is all that is kept: credentials in it would be dropped without a word.
      if (url.username !== '' || url.password !== '') throw new ConfigError(`${env} must not carry a user or password (they would not be sent), got ${JSON.stringify(withoutCredentials(raw))}`)
      if (url.search !== '' || url.hash !== '') throw new ConfigError(`${env} must not have a query or fragment`)
      return url.origin + url.pathname.replace(/\/+$/, '')
    }
    case 'listen': return parseListen(env, raw)
    case 'int': {
      if (!/^\d+$/.test(raw)) throw new ConfigError(`${env} must be a whole number, got ${JSON.stringify(raw)}`)
      const n = Number(raw)
      // Node's timers take at most 2^31-1 ms and turn a longer delay into 1 ms (a warning aside):
      // a drain, client or GitLab timeout of "forever" would end everything at once.
      const max = env.endsWith('_MS') ? MAX_TIMER_MS : Number.MAX_SAFE_INTEGER
      if (!Number.isSafeInteger(n) || n > max) throw new ConfigError(`${env} must be at most ${max}${max === MAX_TIMER_MS ? ' (about 24 days)' : ''}, got ${raw}`)
      if (n < (setting.min ?? 0)) throw new ConfigError(`${env} must be at least ${setting.min ?? 0}, got ${raw}`)
      return n
    }
    case 'ratio': {
      const n = Number(raw)
      if (!/^\d+(\.\d+)?$/.test(raw) || !(n >= 0 && n <= 1)) throw new ConfigError(`${env} must be a number from 0 to 1, got ${JSON.stringify(raw)}`)
      return n
    }
    case 'bool':
      if (raw === 'true' || raw === '1') return true
      if (raw === 'false' || raw === '0') return false
      throw new ConfigError(`${env} must be true or false, got ${JSON.stringify(raw)}`)
    case 'list': return Object.freeze(raw.split(',').map(s => s.trim()).filter(s => s !== ''))
    case 'enum':
      if (!setting.values!.includes(raw)) throw new ConfigError(`${env} must be one of ${setting.values!.join(', ')}, got ${JSON.stringify(raw)}`)
      return raw
  }
  throw new ConfigError(`unknown setting kind for ${key}`)
}

/**
 * Reads settings from a config file's object (keys as in SETTINGS, or their variable names)
 * overlaid by the environment, then by `overrides` (command-line flags); validates; freezes.
 * `required` lists keys that must be set.
 */
export function loadConfig (env: Readonly<Record<string, string | undefined>>, options: { file?: Record<string, unknown>, overrides?: Readonly<Partial<Record<keyof Settings, string>>>, required?: ReadonlyArray<keyof Settings> } = {}): Config {
  const out: Record<string, unknown> = {}
  const file = options.file ?? {}
  for (const name of Object.keys(file)) {
    const known = Object.entries(SETTINGS).some(([key, s]) => key === name || s.env === name)
    if (!known) throw new ConfigError(`config file: unknown setting ${JSON.stringify(name)}`)
  }
  checkUnknownVariables(env)
  for (const [key, setting] of Object.entries(SETTINGS) as Array<[string, Setting]>) {
    // Both spellings in one file: one of them would be dropped without a word.
    if (file[key] !== undefined && file[setting.env] !== undefined) throw new ConfigError(`config file: ${key} and ${setting.env} are the same setting; keep one`)
    const fromFile = file[key] ?? file[setting.env]
    const raw = options.overrides?.[key as keyof Settings] ?? env[setting.env] ?? (fromFile === undefined ? undefined : Array.isArray(fromFile) ? fromFile.join(',') : String(fromFile)) ?? setting.default
    out[key] = raw === undefined ? undefined : parse(key, setting, raw)
  }
  for (const key of options.required ?? []) {
    if (out[key] === undefined || out[key] === '') {
      throw new ConfigError(`${SETTINGS[key].env} is required: ${SETTINGS[key].description}`)
    }
  }
  const config = out as Config
  // An empty store setting (a template's unset value) is not "no Redis": the embedded memory
  // store, one per replica, would take its place without a word.
  for (const key of ['redisClusterNodes', 'redisSentinels', 'stateFile', 'redisUsername', 'redisPassword', 'redisSentinelPassword', 'redisTlsCaFile', 'redisStoreId'] as const) {
    const { env: name } = SETTINGS[key]
    const raw = env[name] ?? file[key] ?? file[name]
    if (raw !== undefined && raw !== null && (Array.isArray(raw) ? raw.join(',') : String(raw)).replace(/[\s,]/g, '') === '') {
      throw new ConfigError(`${name} is set but empty: give a value, or unset it`)
    }
  }
  if (config.redisUrl !== undefined) checkRedisUrl(config.redisUrl)
  if (config.redisUrl !== undefined && config.stateFile !== undefined) {
    throw new ConfigError('GATE_STATE_FILE is for the memory store; it cannot be used with GATE_REDIS_URL')
  }
  // Credentials for nodes the gate is not told to use would be ignored without a word.
  if (config.redisUrl !== undefined && (config.redisUsername !== undefined || config.redisPassword !== undefined)) {
    throw new ConfigError('GATE_REDIS_USERNAME and GATE_REDIS_PASSWORD are for GATE_REDIS_CLUSTER_NODES and GATE_REDIS_SENTINELS; GATE_REDIS_URL carries its own (redis://user:password@host:port/db)')
  }
  if ((config.redisUsername !== undefined || config.redisPassword !== undefined) && config.redisClusterNodes.length === 0 && config.redisSentinels.length === 0) {
    throw new ConfigError('GATE_REDIS_USERNAME and GATE_REDIS_PASSWORD need GATE_REDIS_CLUSTER_NODES or GATE_REDIS_SENTINELS')
  }
  if (config.redisSentinelPassword !== undefined && config.redisSentinels.length === 0) {
    throw new ConfigError('GATE_REDIS_SENTINEL_PASSWORD needs GATE_REDIS_SENTINELS')
  }
  if ((config.redisClusterNodes.length > 0 ? 1 : 0) + (config.redisSentinels.length > 0 ? 1 : 0) + (config.redisUrl !== undefined ? 1 : 0) > 1) {
    throw new ConfigError('set only one of GATE_REDIS_URL, GATE_REDIS_CLUSTER_NODES and GATE_REDIS_SENTINELS')
  }
  // TLS settings for nodes the gate is not told to use would be ignored, and it would connect in plain text.
  if (config.redisTls && config.redisUrl !== undefined) throw new ConfigError('GATE_REDIS_TLS is for GATE_REDIS_CLUSTER_NODES and GATE_REDIS_SENTINELS; for GATE_REDIS_URL write rediss://')
  if (config.redisTls && config.redisClusterNodes.length === 0 && config.redisSentinels.length === 0) throw new ConfigError('GATE_REDIS_TLS needs GATE_REDIS_CLUSTER_NODES or GATE_REDIS_SENTINELS')
  if (config.redisSentinelTls && config.redisSentinels.length === 0) throw new ConfigError('GATE_REDIS_SENTINEL_TLS needs GATE_REDIS_SENTINELS')
  if (config.redisTlsCaFile !== undefined && !config.redisTls && !config.redisSentinelTls && config.redisUrl?.startsWith('rediss://') !== true) {
    throw new ConfigError('GATE_REDIS_TLS_CA_FILE needs a TLS connection to Redis: a rediss:// GATE_REDIS_URL, GATE_REDIS_TLS or GATE_REDIS_SENTINEL_TLS')
  }
  if (config.redisStoreId !== undefined) {
    // A marker is compared as written: an id with white space or a trace's `lost:` would never match.
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(config.redisStoreId)) throw new ConfigError(`GATE_REDIS_STORE_ID must be the store's id as its first start logged it (letters, digits and ._-), got ${JSON.stringify(config.redisStoreId)}`)
    if (config.redisUrl === undefined && config.redisClusterNodes.length === 0 && config.redisSentinels.length === 0) throw new ConfigError('GATE_REDIS_STORE_ID needs a Redis store: GATE_REDIS_URL, GATE_REDIS_CLUSTER_NODES or GATE_REDIS_SENTINELS')
  }
  trustedPeers(config.trustedProxies)
  // A "no project" kept longer than a project found would be cut to that without a word; the
  // default (10 s) is cut so beside a shorter GATE_PROJECT_LOOKUP_TTL_MS, as it always was.
  const notFoundSet = [options.overrides?.projectNotFoundTtlMs, env[SETTINGS.projectNotFoundTtlMs.env], file.projectNotFoundTtlMs, file[SETTINGS.projectNotFoundTtlMs.env]].some(v => v !== undefined)
  if (notFoundSet && config.projectNotFoundTtlMs > config.projectLookupTtlMs) {
    throw new ConfigError(`GATE_PROJECT_NOT_FOUND_TTL_MS must be at most GATE_PROJECT_LOOKUP_TTL_MS (${config.projectLookupTtlMs}), got ${config.projectNotFoundTtlMs}`)
  }
  // A prefix the token shapes would not recognise must stop the start: its job tokens would pass unchecked.
  if (config.instanceTokenPrefix !== undefined && config.instanceTokenPrefix !== '' && !isRecognisedInstancePrefix(config.instanceTokenPrefix)) {
    throw new ConfigError(`GATE_INSTANCE_TOKEN_PREFIX must be empty or 1 to 64 visible characters (no white space), got ${JSON.stringify(config.instanceTokenPrefix)}`)
  }
  // A budget smaller than one body read whole (1 MiB at /api/graphql, GATE_MAX_INSPECTED_BODY_BYTES
  // elsewhere, each with the chunk that ends it) would refuse such requests however idle the gate.
  const smallestBudget = Math.max(2 << 20, 2 * config.maxInspectedBodyBytes)
  if (config.bodyBudgetBytes !== 0 && config.bodyBudgetBytes < smallestBudget) {
    throw new ConfigError(`GATE_BODY_BUDGET_BYTES must be 0 (no bound) or at least ${smallestBudget} (2 MiB, and twice GATE_MAX_INSPECTED_BODY_BYTES), got ${config.bodyBudgetBytes}`)
  }
  // The operator token opens every project's allowlist through the configuration API, which
  // answers anyone who reaches the gate and counts no failed attempts: a short one can be guessed.
  if (config.adminToken !== undefined && config.adminToken !== '' && [...config.adminToken].length < MIN_ADMIN_TOKEN_CHARS) {
    throw new ConfigError(`GATE_ADMIN_TOKEN must be at least ${MIN_ADMIN_TOKEN_CHARS} characters (it may change any project's allowlist; e.g. \`openssl rand -hex 32\`), got ${[...config.adminToken].length}`)
  }
  // Both travel in a header, which holds no control character and loses white space at its ends:
  // a newline left by `echo` in a Kubernetes Secret made the service token unsendable (every
  // lookup failed) and the operator token unmatchable, so the operator's requests were taken
  // for a user's and the gate sent that token to GitLab to ask whose it was.
  for (const key of ['serviceToken', 'adminToken'] as const) {
    const value = config[key]
    if (value !== undefined && NOT_IN_HEADER.test(value)) {
      throw new ConfigError(`${SETTINGS[key].env} has white space at an end or a control character (a newline written into a Secret by \`echo\`?): a header cannot carry it as written`)
    }
  }
  if (config.identityResolver === 'jwt' && config.jwtKey === undefined) {
    throw new ConfigError('GATE_JWT_KEY is required when GATE_IDENTITY_RESOLVER is jwt')
  }
  if (config.jwtKey !== undefined && JWKS_URL.test(config.jwtKey)) checkJwksUrl(config.jwtKey)
  return Object.freeze(config)
}

/** What a header cannot carry as written: a control character, or white space at an end (dropped). */
const NOT_IN_HEADER = /[\x00-\x08\x0a-\x1f\x7f]|^[ \t]|[ \t]$/

/** A GATE_JWT_KEY that names a JWKS URL (any case of the scheme), not a PEM or JWKS file. */
export const JWKS_URL = /^https?:\/\//i

/**
 * The key set is fetched with fetch(), which refuses a URL holding a user or password, and its
 * error quotes the URL whole: every JWT job token was refused (503) and the warning of every
 * failed refresh wrote the password to the log. Such a URL stops the start, printed without them.
 */
function checkJwksUrl (raw: string): void {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new ConfigError(`GATE_JWT_KEY must be a PEM file, a JWKS file or a JWKS URL; as a URL it does not parse, got ${JSON.stringify(withoutCredentials(raw))}`)
  }
  if (url.username !== '' || url.password !== '') throw new ConfigError(`GATE_JWT_KEY must not carry a user or password (the key set is fetched without them), got ${JSON.stringify(withoutCredentials(raw))}`)
}

const KNOWN_VARIABLES: ReadonlySet<string> = new Set(Object.values(SETTINGS).map((s: Setting) => s.env))
// What Kubernetes puts in a pod's environment for a Service named `gate` (enableServiceLinks):
// GATE_SERVICE_HOST, GATE_SERVICE_PORT[_<port name>], GATE_PORT[_<port>_<protocol>[_PROTO|_PORT|_ADDR]].
const SERVICE_LINK = /^GATE_(?:SERVICE_HOST|SERVICE_PORT(?:_[A-Z0-9_]+)?|PORT(?:_\d+_(?:TCP|UDP|SCTP)(?:_(?:PROTO|PORT|ADDR))?)?)$/

/**
 * A variable that reads as a setting but is none (GATE_NON_API_JOB_TOKEN=deny, gate_mode=enforce)
 * would leave the setting meant at its default, which may be the looser one, without a word:
 * it stops the start, naming the setting it looks like.
 */
function checkUnknownVariables (env: Readonly<Record<string, string | undefined>>): void {
  for (const name of Object.keys(env)) {
    if (env[name] === undefined || !name.toUpperCase().startsWith('GATE_') || KNOWN_VARIABLES.has(name) || SERVICE_LINK.test(name)) continue
    const meant = closestVariable(name)
    throw new ConfigError(`${name} is not a setting${meant === undefined ? '' : ` (did you mean ${meant}?)`}: unset it, or see \`job-token-gate serve --help\` for the settings`)
  }
}

/** The setting whose variable is nearest to `name` (case aside), if any is near. */
function closestVariable (name: string): string | undefined {
  const upper = name.toUpperCase()
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(upper.length / 6)) + 1
  for (const known of KNOWN_VARIABLES) {
    const d = editDistance(upper, known)
    if (d < bestDistance) { best = known; bestDistance = d }
  }
  return best
}

function editDistance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) row.push(Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)))
    previous = row
  }
  return previous[b.length]!
}

/**
 * ioredis reads anything as a target: an empty or blank GATE_REDIS_URL, one without a host
 * (`redis:///3`, or a password with an unescaped `#` or `/` cutting the URL short) is Redis on
 * localhost:6379, database 0, and `rediss//...` a Unix socket of that name. The gate would then
 * read its grants from whatever answers there. Only a URL naming its host and database is taken.
 */
function checkRedisUrl (raw: string): void {
  const refuse = (why: string): never => {
    throw new ConfigError(`GATE_REDIS_URL must be redis://[user:password@]host:port[/db] or rediss://... (${why}; reserved characters in a password, such as / ? # @, percent-encoded), got ${JSON.stringify(withoutCredentials(raw))}`)
  }
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return refuse('not a URL')
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') refuse('the scheme is not redis: or rediss:')
  if (url.hostname === '') refuse('no host')
  if (!/^(?:\/\d*)?$/.test(url.pathname)) refuse('the database must be a number')
  if (url.hash !== '') refuse('a fragment')
}

/**
 * A URL's user and password, were it given any, left out of a message: all before the last `@`;
 * and its query and fragment, which can carry one too (ioredis takes `?password=...` as the
 * password, and a token in GATE_UPSTREAM_URL's query was printed whole).
 */
export function withoutCredentials (raw: string): string {
  const at = raw.lastIndexOf('@')
  // The scheme is kept (its characters hold no '@'); a scan, not `.*@`, which backtracks.
  const scheme = /^[a-z][a-z0-9+.-]*:\/*/i.exec(raw)?.[0] ?? ''
  const first = raw.search(/[?#]/)
  // A `?` or `#` before the last `@`: in the password, or the `@` is in the query; which one
  // cannot be told, so nothing after the scheme is shown.
  if (first !== -1 && first < at) return scheme + '***'
  const rest = at === -1 ? raw.slice(scheme.length) : raw.slice(at)
  const cut = rest.search(/[?#]/)
  return scheme + (at === -1 ? '' : '***') + (cut === -1 ? rest : rest.slice(0, cut + 1) + '***')
}

/** Whether a socket's peer address is a trusted proxy. */
export type PeerCheck = (address: string | undefined) => boolean

/**
 * GATE_TRUSTED_PROXIES as a check of peer addresses: single addresses and CIDR ranges, IPv4 and
 * IPv6, held in Node's net.BlockList, which also matches an IPv4-mapped IPv6 peer
 * (`::ffff:10.1.2.3`, how a dual-stack socket reports an IPv4 client) against IPv4 entries.
 * Throws ConfigError naming the variable and the entry for anything else.
 */
export function trustedPeers (entries: readonly string[]): PeerCheck {
  const list = new BlockList()
  for (const entry of entries) {
    const slash = entry.indexOf('/')
    const address = slash === -1 ? entry : entry.slice(0, slash)
    const family = isIP(address)
    const prefix = slash === -1 ? null : entry.slice(slash + 1)
    try {
      if (family === 0 || (prefix !== null && !/^\d{1,3}$/.test(prefix))) throw new RangeError('not an address or range')
      const type = family === 4 ? 'ipv4' : 'ipv6'
      // addSubnet refuses a prefix longer than the family's (ERR_OUT_OF_RANGE).
      if (prefix === null) list.addAddress(address, type)
      else list.addSubnet(address, Number(prefix), type)
    } catch {
      throw new ConfigError(`GATE_TRUSTED_PROXIES must list IP addresses or CIDR ranges (e.g. 10.0.0.0/8, fd00::/8), got ${JSON.stringify(entry)}`)
    }
  }
  // Hot path (every request): BlockList.check builds a SocketAddress per call (about 4 µs), and
  // a gate sees few distinct peers, so answers are kept per address (bounded: cleared when full).
  const known = new Map<string, boolean>()
  return address => {
    if (address === undefined) return false
    let answer = known.get(address)
    if (answer === undefined) {
      const family = isIP(address)
      answer = family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6')
      if (known.size >= 1024) known.clear()
      known.set(address, answer)
    }
    return answer
  }
}

/** Reads a JSON config file for `--config`. */
export function readConfigFile (path: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    // V8's message quotes the text around the error, which may be a token the file holds.
    throw new ConfigError(`config file ${path} must be a JSON object: not valid JSON`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(`config file ${path} must be a JSON object: not an object`)
  return value as Record<string, unknown>
}

/** The settings as `serve --help` lists them. */
export function describeSettings (): string {
  // The names' column: as wide as the longest name, and a space.
  const width = Math.max(...Object.values(SETTINGS).map((s: Setting) => s.env.length)) + 1
  const rows = Object.values(SETTINGS).map((s: Setting) => {
    const extra = s.values !== undefined ? ` (${s.values.join('|')})` : ''
    const def = 'default' in s && s.default !== undefined ? ` [default: ${s.default === '' ? '""' : s.default}]` : ''
    return `  ${s.env.padEnd(width)}${s.description}${extra}${def}`
  })
  return `Settings (environment variables; a --config JSON file may set the same keys):\n${rows.join('\n')}\n`
}
