// Builds the gate's store, GitLab client and job resolver from the configuration.

import { readFileSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { ConnectionOptions } from 'node:tls'
import { ConfigError, JWKS_URL, withoutCredentials, type Config } from '../config.ts'
import { createGitlabClient, type GitlabClient } from '../gitlab/client.ts'
import { createMemoryStore } from '../grants/memory-store.ts'
import { createRedisStore, type RedisNode } from '../grants/redis-store.ts'
import type { GrantStore } from '../grants/store.ts'
import { KeySourceError, type KeySource } from '../identity/keys.ts'
import { createJobResolver } from '../identity/resolver.ts'
import type { ClosableJobResolver } from '../identity/types.ts'
import { connectionLimitOf, openFilesSoftLimit } from './connections.ts'

function nodes (env: string, list: readonly string[]): RedisNode[] {
  return list.map(item => {
    // A host is a name or an address (IPv6 in brackets, or bare). An entry written as a URL
    // (`redis://:password@node:6379`, `user:password@node:6379`) ends in `:port` too, and was
    // taken whole for a host name, which the failed start printed; it is refused, printed
    // without its password.
    const m = /^(\[[0-9A-Fa-f:.]+\]|[^\s/?#@[\]]+):(\d{1,5})$/.exec(item)
    if (m === null) throw new ConfigError(`${env} must list host:port entries, got ${JSON.stringify(withoutCredentials(item))}`)
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) }
  })
}

/**
 * `redis`: store options no setting holds (tests give longer timeouts on a loaded machine;
 * accept-store-loss writes no new marker).
 */
export async function createStoreFromConfig (config: Config, redis: { readonly commandTimeoutMs?: number, readonly connectTimeoutMs?: number, readonly createMarker?: boolean } = {}): Promise<GrantStore> {
  const tls = redisTls(config)
  // Cluster and Sentinel: the options given, the data nodes' credentials and TLS.
  const store = { ...redis, ...(config.redisStoreId !== undefined ? { storeId: config.redisStoreId } : {}) }
  const common = {
    ...store,
    ...(config.redisUsername !== undefined ? { username: config.redisUsername } : {}),
    ...(config.redisPassword !== undefined ? { password: config.redisPassword } : {}),
    ...(config.redisTls ? { tls } : {})
  }
  if (config.redisClusterNodes.length > 0) return await createRedisStore({ cluster: nodes('GATE_REDIS_CLUSTER_NODES', config.redisClusterNodes), ...common })
  if (config.redisSentinels.length > 0) {
    return await createRedisStore({
      sentinels: nodes('GATE_REDIS_SENTINELS', config.redisSentinels),
      sentinelName: config.redisSentinelName,
      ...common,
      ...(config.redisSentinelPassword !== undefined ? { sentinelPassword: config.redisSentinelPassword } : {}),
      ...(config.redisSentinelTls ? { sentinelTls: tls } : {})
    })
  }
  // rediss:// is TLS by itself; the CA file, if any, adds to it.
  if (config.redisUrl !== undefined) return await createRedisStore({ url: config.redisUrl, ...store, ...(config.redisTlsCaFile !== undefined ? { tls } : {}) })
  if (config.stateFile !== undefined) {
    // Every change would fail to save (503) with the directory missing: a mistyped path.
    const dir = dirname(resolve(config.stateFile))
    if (statSync(dir, { throwIfNoEntry: false })?.isDirectory() !== true) {
      throw new ConfigError(`GATE_STATE_FILE: the directory ${dir} does not exist (the file itself is created on the first change)`)
    }
  }
  return await createMemoryStore(config.stateFile === undefined ? {} : { file: config.stateFile })
}

/** node:tls options for Redis: the CAs of GATE_REDIS_TLS_CA_FILE, or Node's. */
function redisTls (config: Config): ConnectionOptions {
  if (config.redisTlsCaFile === undefined) return {}
  let ca: string
  try {
    ca = readFileSync(config.redisTlsCaFile, 'utf8')
  } catch (err) {
    throw new ConfigError(`GATE_REDIS_TLS_CA_FILE: cannot read ${config.redisTlsCaFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`GATE_REDIS_TLS_CA_FILE: ${config.redisTlsCaFile} holds no PEM certificate`)
  return { ca }
}

/**
 * The gate's one client of GitLab's API (src/gitlab/client.ts), at
 * `<GATE_UPSTREAM_URL><GATE_RELATIVE_URL_ROOT>/api/v4`: identity, the configuration API and the
 * package-rule role checks all call GitLab through it.
 */
export function createGitlabClientFromConfig (config: Config): GitlabClient {
  // As many connections to GitLab as the listeners take client connections (GATE_MAX_CONNECTIONS
  // or the limit derived from the open files limit, src/gate/connections.ts): a call outlives a
  // client that leaves (up to its timeout), so clients that connected, named a new job token and
  // left at once had the gate open a connection to GitLab each, until no descriptor was left and
  // the listeners accepted nothing. Past the bound a call waits its turn, within its timeout.
  const listeners = config.authListen === undefined ? 1 : 2
  const { max } = connectionLimitOf(config.maxConnections, openFilesSoftLimit(), listeners)
  return createGitlabClient({
    url: config.upstreamUrl!,
    relativeUrlRoot: config.relativeUrlRoot,
    ...(config.serviceToken === undefined ? {} : { serviceToken: config.serviceToken }),
    timeoutMs: config.identityTimeoutMs,
    ...(max === null ? {} : { connections: max * listeners })
  })
}

function keySource (value: string): KeySource {
  if (JWKS_URL.test(value)) return { jwksUrl: value }
  if (value.endsWith('.json')) return { jwksFile: value }
  try {
    return { pem: readFileSync(value, 'utf8') }
  } catch (err) {
    throw new ConfigError(`GATE_JWT_KEY: cannot read ${value}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
}

/**
 * `gitlab`: the gate's GitLab client (createGitlabClientFromConfig); the resolver shares its Pool
 * and counters and leaves closing it to the gate. `onWarning`: told when a JWKS refresh fails
 * (the URL and the failure, never a token).
 */
export function createResolverFromConfig (config: Config, gitlab: GitlabClient, onWarning?: (message: string) => void): ClosableJobResolver {
  const cache = { tokenTtlMs: config.identityCacheTtlMs, maxTokens: config.identityCacheMaxTokens, namespaceTtlMs: config.namespaceCacheTtlMs }
  const warn = onWarning === undefined ? {} : { onWarning }
  if (config.identityResolver === 'jwt') {
    const { jwtIssuer: issuer, jwtAudience: audience } = config
    if (issuer === undefined || audience === undefined) {
      throw new ConfigError('GATE_JWT_ISSUER and GATE_JWT_AUDIENCE are required when GATE_IDENTITY_RESOLVER is jwt')
    }
    return withKeyErrors(() => createJobResolver({ kind: 'jwt', key: keySource(config.jwtKey!), issuer, audience, cache, ...warn }))
  }
  const { serviceToken } = config
  if (serviceToken === undefined) {
    throw new ConfigError('GATE_SERVICE_TOKEN is required by the introspection resolver (it reads job projects and their groups)')
  }
  return withKeyErrors(() => createJobResolver({
    upstream: config.upstreamUrl!,
    serviceToken,
    timeoutMs: config.identityTimeoutMs,
    gitlab,
    cache,
    ...warn,
    ...(config.jwtKey === undefined ? {} : { jwt: { key: keySource(config.jwtKey) } })
  }))
}

/** A key GATE_JWT_KEY names that cannot be used stops the start as any setting does: one line naming it. */
function withKeyErrors<T> (build: () => T): T {
  try {
    return build()
  } catch (err) {
    if (err instanceof KeySourceError) throw new ConfigError(`GATE_JWT_KEY: ${err.message}`)
    throw err
  }
}
