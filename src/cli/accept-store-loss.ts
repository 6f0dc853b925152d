// `job-token-gate accept-store-loss`: after Redis lost what the gate wrote, replicas refuse every
// job-token decision that needs the store (GRANTS_STORE_LOST, src/grants/redis-marker.ts) until the
// data is restored or the loss accepted. Accepting writes the store's id back into every absent
// marker, so the replicas decide again, on what the store holds now: a choice an operator makes,
// never the gate, because what was lost (allowlists, Maintainer-only package rules) is gone.

import { loadConfig, readConfigFile } from '../config.ts'
import { createStoreFromConfig } from '../gate/deps.ts'
import type { GrantStore } from '../grants/store.ts'
import type { RedisGrantStore } from '../grants/redis-store.ts'

const OPERATOR_PATIENCE_MS = 60_000

export interface AcceptLossOptions {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly configFile?: string
  /** The id the refusing replicas log; default: the one the store's other markers hold. */
  readonly marker?: string
  readonly out: (text: string) => void
  readonly err: (text: string) => void
}

/** Returns the exit code: 0 accepted (or nothing absent), 1 nothing to go by or another id given, 2 not a Redis store. */
export async function runAcceptStoreLoss (options: AcceptLossOptions): Promise<number> {
  const config = loadConfig(options.env, options.configFile === undefined ? {} : { file: readConfigFile(options.configFile) })
  // An operator's command waits for Redis as long as rewriting 16,384 Cluster markers can take on
  // a busy node, not the five seconds a start gives it (which a loaded machine outran).
  const store = await createStoreFromConfig(config, { createMarker: false, connectTimeoutMs: OPERATOR_PATIENCE_MS })
  try {
    if (!isRedis(store)) {
      options.err('job-token-gate accept-store-loss: the store is not Redis (GATE_REDIS_URL, GATE_REDIS_SENTINELS or GATE_REDIS_CLUSTER_NODES): the memory store has no marker\n')
      return 2
    }
    // An id other than the store's, written into its absent markers, would make those slots
    // another store's: refused by every replica for good, and no later accept (which writes
    // only absent markers and traces) could undo it.
    if (options.marker !== undefined && config.redisStoreId !== undefined && options.marker !== config.redisStoreId) {
      options.err(`job-token-gate accept-store-loss: GATE_REDIS_STORE_ID names ${config.redisStoreId}, not ${options.marker}: the replicas would refuse the markers written\n`)
      return 1
    }
    if (options.marker !== undefined && store.marker.id !== undefined && options.marker !== store.marker.id) {
      options.err(`job-token-gate accept-store-loss: the store's markers hold ${store.marker.id}, not ${options.marker}: the absent ones are accepted with that id; run it without --marker (a replica that logs ${options.marker} was started before the store was marked again: restart it)\n`)
      return 1
    }
    const id = options.marker ?? store.marker.id
    if (id === undefined) {
      options.err('job-token-gate accept-store-loss: the store holds no marker at all, nor the trace a replica leaves when it finds one gone: give the id the refusing replicas log (--marker <id>), or restart them: a replica that starts on a store without markers marks it anew\n')
      return 1
    }
    const { written, other } = await store.acceptLoss(id)
    options.out(`store ${id}: ${written} of ${store.markerKeys.all.length} marker(s) written back` +
      (other > 0 ? `; ${other} hold another id (replicas started since the loss): restart the replicas that still refuse` : '') + '\n')
    return 0
  } finally {
    await store.close()
  }
}

function isRedis (store: GrantStore): store is RedisGrantStore {
  return store.kind === 'redis'
}
