// Builds the gate's store and job resolver from the configuration.

import { readFileSync } from 'node:fs'
import { ConfigError, type Config } from '../config.ts'
import type { GitlabClient } from '../gitlab/client.ts'
import { createMemoryStore } from '../grants/memory-store.ts'
import { createRedisStore, type RedisNode } from '../grants/redis-store.ts'
import type { GrantStore } from '../grants/store.ts'
import type { KeySource } from '../identity/keys.ts'
import { createJobResolver } from '../identity/resolver.ts'
import type { ClosableJobResolver } from '../identity/types.ts'

function nodes (env: string, list: readonly string[]): RedisNode[] {
  return list.map(item => {
    const m = /^(.+):(\d{1,5})$/.exec(item)
    if (m === null) throw new ConfigError(`${env} must list host:port entries, got ${JSON.stringify(item)}`)
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) }
  })
}

export async function createStoreFromConfig (config: Config): Promise<GrantStore> {
  if (config.redisClusterNodes.length > 0) return await createRedisStore({ cluster: nodes('GATE_REDIS_CLUSTER_NODES', config.redisClusterNodes) })
  if (config.redisSentinels.length > 0) {
    return await createRedisStore({ sentinels: nodes('GATE_REDIS_SENTINELS', config.redisSentinels), sentinelName: config.redisSentinelName })
  }
  if (config.redisUrl !== undefined) return await createRedisStore({ url: config.redisUrl })
  return await createMemoryStore(config.stateFile === undefined ? {} : { file: config.stateFile })
}

function keySource (value: string): KeySource {
  if (/^https?:\/\//.test(value)) return { jwksUrl: value }
  if (value.endsWith('.json')) return { jwksFile: value }
  try {
    return { pem: readFileSync(value, 'utf8') }
  } catch (err) {
    throw new ConfigError(`GATE_JWT_KEY: cannot read ${value}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
}

/** `gitlab`: the gate's GitLab client, to share its Pool and counters; without it the resolver makes its own. */
export function createResolverFromConfig (config: Config, gitlab?: GitlabClient): ClosableJobResolver {
  const cache = { tokenTtlMs: config.identityCacheTtlMs }
  if (config.identityResolver === 'jwt') {
    if (config.jwtIssuer === undefined || config.jwtAudience === undefined) {
      throw new ConfigError('GATE_JWT_ISSUER and GATE_JWT_AUDIENCE are required when GATE_IDENTITY_RESOLVER is jwt')
    }
    return createJobResolver({ kind: 'jwt', key: keySource(config.jwtKey!), issuer: config.jwtIssuer, audience: config.jwtAudience, cache })
  }
  if (config.serviceToken === undefined) {
    throw new ConfigError('GATE_SERVICE_TOKEN is required by the introspection resolver (it reads job projects and their groups)')
  }
  return createJobResolver({
    upstream: config.upstreamUrl!,
    serviceToken: config.serviceToken,
    timeoutMs: config.identityTimeoutMs,
    ...(gitlab === undefined ? {} : { gitlab }),
    cache,
    ...(config.jwtKey === undefined ? {} : { jwt: { key: keySource(config.jwtKey) } })
  })
}
