// `job-token-gate import-allowlists --from-gitlab`: the wiring from settings to the import
// (src/admin/import.ts). The store is the one `serve` would use (GATE_REDIS_URL, Sentinel,
// Cluster, or the memory store's GATE_STATE_FILE), GitLab is reached as the gate reaches it
// (GATE_UPSTREAM_URL + GATE_RELATIVE_URL_ROOT, GATE_SERVICE_TOKEN), and the catalog's policies
// validate what is written.

import { pino } from 'pino'
import { DEFAULT_CATALOG_DIR, loadCatalog } from '../catalog/load.ts'
import { createPolicyIndex } from '../catalog/policy-index.ts'
import { loadConfig, readConfigFile } from '../config.ts'
import { packageFormats } from '../admin/handler.ts'
import { importAllowlists, type ImportReport } from '../admin/import.ts'
import { createGitlabClientFromConfig, createStoreFromConfig } from '../gate/deps.ts'
import { createInstanceSettings } from '../grants/model.ts'
import type { RedisGrantStore } from '../grants/redis-store.ts'

export interface ImportCommandOptions {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly configFile?: string
  readonly catalogDir?: string
  readonly projects: readonly string[]
  readonly dryRun: boolean
  /** Replace projects changed through the configuration API since last imported (`--replace-changed`). */
  readonly replaceChanged?: boolean
  readonly out: (text: string) => void
  /** Audit log lines (JSON), kept off the report. */
  readonly log: (text: string) => void
}

export async function runImportCommand (options: ImportCommandOptions): Promise<ImportReport> {
  const config = loadConfig(options.env, {
    ...(options.configFile === undefined ? {} : { file: readConfigFile(options.configFile) }),
    required: ['upstreamUrl', 'serviceToken']
  })
  const catalog = loadCatalog(options.catalogDir ?? config.catalogDir ?? DEFAULT_CATALOG_DIR)
  const gitlab = createGitlabClientFromConfig(config)
  // A dry run writes nothing, a Redis store's marker included: a store without one stays so.
  const store = await createStoreFromConfig(config, options.dryRun ? { createMarker: false } : {})
  const logger = pino({ name: 'job-token-gate', level: config.logLevel }, { write: (line: string) => { options.log(line) } })
  const marker = store.kind === 'redis' ? (store as RedisGrantStore).marker : undefined
  // As serve warns: the import cannot tell a new store from one that lost everything either.
  if (marker?.created === true && config.redisStoreId === undefined) {
    logger.warn({ store: 'redis', marker: marker.id }, 'the Redis store held no marker: it is new, or lost everything it held (a restart without persistence, FLUSHALL), package rules and changes made through the gate included; marked, so a later loss is refused rather than read as "nothing configured". Set GATE_REDIS_STORE_ID to this id')
  }
  try {
    return await importAllowlists({
      gitlab,
      store,
      settings: createInstanceSettings({ enforceInboundScope: config.enforceInboundScope, unknownProject: config.unknownProject }),
      policies: createPolicyIndex(catalog.policies),
      packageFormats: packageFormats(catalog.routes),
      logger,
      projects: options.projects,
      dryRun: options.dryRun,
      replaceChanged: options.replaceChanged === true,
      // Not marked (a dry run marks nothing) and no trace of a loss: nothing was ever written there.
      ...(marker !== undefined && marker.id === undefined ? { storeUnmarked: true } : {}),
      out: line => { options.out(line + '\n') }
    })
  } finally {
    await Promise.allSettled([store.close(), gitlab.close()])
  }
}
