// `job-token-gate serve`: the only place that reads the environment and handles signals.

import { existsSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { pino, type Logger } from 'pino'
import { ConfigError, loadConfig, readConfigFile, type Config } from './config.ts'
import { createGitlabClientFromConfig, createResolverFromConfig, createStoreFromConfig } from './gate/deps.ts'
import { createGate, type Gate } from './gate/server.ts'
import { announceInstanceTokenPrefix } from './identity/instance-prefix.ts'
import { flushStdio, routeStreamThrough, stdioOutput } from './logging.ts'
import type { GrantStore } from './grants/store.ts'
import type { RedisGrantStore } from './grants/redis-store.ts'

/** After SIGTERM the process is gone by the drain timeout plus this, whatever hangs. */
export const SHUTDOWN_MARGIN_MS = 1_000
/** What is left of the margin for the last log lines once everything is closed. */
const FINAL_FLUSH_MS = 500
/** Exit code when the deadline had to end the process (or closing failed); 0 when everything closed in time. */
export const EXIT_FORCED = 1
/** If even the deadline's exit cannot run (the event loop is stuck), a thread kills the process this much later. */
export const WATCHDOG_GRACE_MS = 1_000

/** `catalogDir`: the `--catalog` flag, over GATE_CATALOG_DIR and the config file. */
export async function serve (options: { configFile?: string, env?: NodeJS.ProcessEnv, catalogDir?: string } = {}): Promise<Gate> {
  const config: Config = loadConfig(options.env ?? process.env, {
    ...(options.configFile === undefined ? {} : { file: readConfigFile(options.configFile) }),
    ...(options.catalogDir === undefined ? {} : { overrides: { catalogDir: options.catalogDir } }),
    required: ['upstreamUrl']
  })
  // Every write to stdout and stderr, the log's and anyone else's, goes through src/logging.ts:
  // a reader that goes away or stalls costs dropped, counted lines, never a crash or a hang.
  const stdout = stdioOutput('stdout')
  routeStreamThrough(process.stdout, stdout)
  routeStreamThrough(process.stderr, stdioOutput('stderr'))
  const logger = pino({ name: 'job-token-gate', level: config.logLevel }, stdout)
  // One GitLab client for every caller (identity, configuration API, role checks); the gate closes it.
  const gitlab = createGitlabClientFromConfig(config)
  // A failed JWKS refresh is otherwise only a count in /metrics.
  const resolver = createResolverFromConfig(config, gitlab, message => { logger.warn({ jwks: true }, message) })
  // Nothing may keep the process alive once the start failed (the CLI prints one line).
  let store: GrantStore | undefined
  let gate: Gate
  try {
    store = await createStoreFromConfig(config)
    warnAboutStore(config, store, logger)
    gate = createGate(config, { store, resolver, gitlab, logger })
  } catch (err) {
    await Promise.all([resolver.close(), gitlab.close(), store?.close()])
    throw err
  }
  try {
    await gate.listen()
  } catch (err) {
    await gate.close(0)
    const { code, message } = err as NodeJS.ErrnoException
    throw new ConfigError(`cannot listen on GATE_LISTEN ${config.listen.host}:${config.listen.port} or GATE_HEALTH_LISTEN ${config.healthListen.host}:${config.healthListen.port}: ${code ?? message}`)
  }
  const api = gate.address()
  const health = gate.healthAddress()
  const auth = gate.authAddress()
  let stopping = false
  process.on('SIGTERM', () => {
    if (stopping) return
    stopping = true
    const deadline = performance.now() + config.drainTimeoutMs + SHUTDOWN_MARGIN_MS
    enforceDeadline(config.drainTimeoutMs + SHUTDOWN_MARGIN_MS, logger)
    logger.info({ drain_ms: config.drainTimeoutMs, in_flight: gate.inFlight() }, 'SIGTERM: draining')
    void (async () => {
      try {
        await gate.close()
        logger.info('stopped')
      } catch (err) {
        logger.error({ err: { message: (err as Error).message } }, 'closing failed')
        process.exitCode = EXIT_FORCED
      }
      // The last lines, for a reader that is still there; a gone or stalled one is not waited for.
      await flushStdio(Math.max(0, Math.min(FINAL_FLUSH_MS, deadline - performance.now())))
      process.exit()
    })()
  })
  process.on('SIGINT', () => process.kill(process.pid, 'SIGTERM'))
  process.on('SIGHUP', () => {
    const result = gate.reloadCatalog()
    if (result.ok) logger.info({ catalog_version: result.version }, 'catalog reloaded')
    else logger.error({ error: result.error }, 'catalog reload failed; keeping the last good catalog')
  })
  // Announced once the signal handlers are in place, so a supervisor may signal right away.
  logger.info({ listen: `${api.address}:${api.port}`, health: `${health.address}:${health.port}`, ...(auth === null ? {} : { auth: `${auth.address}:${auth.port}` }), mode: config.mode, store: store.kind, upstream: config.upstreamUrl }, 'job-token-gate ready')
  // Logged once; recognition of job tokens does not wait for it or depend on it.
  void announceInstanceTokenPrefix({ configured: config.instanceTokenPrefix, upstreamUrl: config.upstreamUrl!, relativeUrlRoot: config.relativeUrlRoot, serviceToken: config.serviceToken, timeoutMs: config.identityTimeoutMs, gitlab: gate.gitlab, logger })
  return gate
}

/**
 * The shutdown deadline. Nothing keeps a reference to either timer, so nothing can cancel them:
 * the event loop's timer exits with EXIT_FORCED whatever close() is still waiting for; a
 * worker thread's timer kills the process (SIGKILL) if the event loop itself is stuck (a
 * synchronous write, a handler that never returns) and that exit cannot run.
 */
function enforceDeadline (ms: number, logger: Logger): void {
  setTimeout(() => {
    logger.warn({ deadline_ms: ms }, 'shutdown deadline passed: exiting')
    process.exit(EXIT_FORCED)
  }, ms)
  try {
    const watchdog = new Worker(
      "const { workerData } = require('node:worker_threads'); setTimeout(() => { process.kill(workerData.pid, 'SIGKILL') }, workerData.ms)",
      { eval: true, workerData: { pid: process.pid, ms: ms + WATCHDOG_GRACE_MS } }
    )
    watchdog.on('error', () => {})
    watchdog.unref()
  } catch {
    // No thread to spare: the event loop's timer still holds.
  }
}

/**
 * The memory store keeps allowlists in this process: without GATE_STATE_FILE they are gone at
 * exit, and replicas never share them. A state file that does not exist yet starts empty (it is
 * written on the first change), which is also what a mistyped path looks like. Redis: a store
 * without markers is new or lost everything (a start cannot tell which), and markers absent
 * beside others are slots that lost their data, refused until restored or accepted.
 */
function warnAboutStore (config: Config, store: GrantStore, logger: Logger): void {
  if (store.kind === 'redis') {
    const { marker, markerKeys } = store as RedisGrantStore
    if (marker.created && config.redisStoreId === undefined) logger.warn({ store: 'redis', marker: marker.id }, 'the Redis store held no marker: it is new, or lost everything it held (a restart without persistence, FLUSHALL); marked, so a later loss is refused rather than read as "nothing configured". Set GATE_REDIS_STORE_ID to this id so that a start on a store that lost everything while no replica read it refuses it too')
    if (config.redisStoreId !== undefined && marker.missing === marker.probed) logger.error({ store: 'redis', marker: marker.id }, 'the Redis store holds no marker of GATE_REDIS_STORE_ID: it lost everything it held, or is new; job-token decisions that need it are refused (GRANTS_STORE_LOST) until the data is restored, or the store is accepted as it is (`job-token-gate accept-store-loss`: a new store is marked so)')
    else if (marker.missing > 0 || marker.other > 0) logger.error({ store: 'redis', marker: marker.id, absent: marker.missing, other: marker.other, read: marker.probed, markers: markerKeys.all.length }, 'some of the Redis store\'s markers read at start are absent or another store\'s: the masters holding them lost their data, and job-token decisions that read it are refused (GRANTS_STORE_LOST) until the data is restored or `job-token-gate accept-store-loss` is run')
    return
  }
  if (config.stateFile === undefined) {
    logger.warn({ store: 'memory' }, 'no GATE_STATE_FILE or Redis: allowlists are kept in this process only, lost when it exits and not shared with other replicas')
  } else if (!existsSync(config.stateFile)) {
    logger.warn({ store: 'memory', state_file: config.stateFile }, 'GATE_STATE_FILE does not exist yet: starting with no allowlists; it is written on the first change')
  }
}
