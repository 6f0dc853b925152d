// `job-token-gate serve`: the only place that reads the environment and handles signals.

import { pino } from 'pino'
import { ConfigError, loadConfig, readConfigFile, type Config } from './config.ts'
import { createResolverFromConfig, createStoreFromConfig } from './gate/deps.ts'
import { createGate, type Gate } from './gate/server.ts'
import { routeStreamThrough, stdioOutput } from './logging.ts'

export async function serve (options: { configFile?: string, env?: NodeJS.ProcessEnv } = {}): Promise<Gate> {
  const config: Config = loadConfig(options.env ?? process.env, {
    ...(options.configFile === undefined ? {} : { file: readConfigFile(options.configFile) }),
    required: ['upstreamUrl']
  })
  // Every write to stdout and stderr, the log's and anyone else's, goes through src/logging.ts:
  // a reader that goes away or stalls costs dropped, counted lines, never a crash or a hang.
  const stdout = stdioOutput('stdout')
  routeStreamThrough(process.stdout, stdout)
  routeStreamThrough(process.stderr, stdioOutput('stderr'))
  const logger = pino({ name: 'job-token-gate', level: config.logLevel }, stdout)
  const resolver = createResolverFromConfig(config)
  const store = await createStoreFromConfig(config)
  const gate = createGate(config, { store, resolver, logger })
  try {
    await gate.listen()
  } catch (err) {
    await gate.close(0)
    const { code, message } = err as NodeJS.ErrnoException
    throw new ConfigError(`cannot listen on GATE_LISTEN ${config.listen.host}:${config.listen.port} or GATE_HEALTH_LISTEN ${config.healthListen.host}:${config.healthListen.port}: ${code ?? message}`)
  }
  const api = gate.address()
  const health = gate.healthAddress()
  let stopping = false
  process.on('SIGTERM', () => {
    if (stopping) return
    stopping = true
    logger.info({ drain_ms: config.drainTimeoutMs, in_flight: gate.inFlight() }, 'SIGTERM: draining')
    void gate.close().then(() => {
      logger.info('stopped')
      process.exit(0)
    })
  })
  process.on('SIGINT', () => process.kill(process.pid, 'SIGTERM'))
  process.on('SIGHUP', () => {
    const result = gate.reloadCatalog()
    if (result.ok) logger.info({ catalog_version: result.version }, 'catalog reloaded')
    else logger.error({ error: result.error }, 'catalog reload failed; keeping the last good catalog')
  })
  // Announced once the signal handlers are in place, so a supervisor may signal right away.
  logger.info({ listen: `${api.address}:${api.port}`, health: `${health.address}:${health.port}`, mode: config.mode, store: store.kind, upstream: config.upstreamUrl }, 'job-token-gate ready')
  return gate
}
