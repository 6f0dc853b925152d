// Redis over TLS in every mode. GATE_REDIS_URL took rediss://, but a Sentinel or Cluster
// deployment could only be reached in plain text: managed Redis with encryption in transit, and
// sentinels listening on TLS alone, could not be used at all. GATE_REDIS_TLS (the data nodes),
// GATE_REDIS_SENTINEL_TLS (the sentinels) and GATE_REDIS_TLS_CA_FILE (the CAs to check them
// against) say how. The servers here listen on a TLS port beside their plain one; the store is
// given only the TLS ports, which answer nothing in plain text.

import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, loadConfig } from '../../src/config.ts'
import { createStoreFromConfig } from '../../src/gate/deps.ts'
import { startRedis, startRedisCluster, TLS_CA_FILE } from '../helpers/redis.ts'
import { serveOutcome } from '../helpers/serve.ts'

const base = { GATE_UPSTREAM_URL: 'http://127.0.0.1:1' }

// The store's 1 s command and 5 s start timeouts fail fast in production; on a loaded machine a
// TLS connection's first commands may take longer, and these tests are about reaching Redis.
const SLOW_MACHINE = { commandTimeoutMs: 30_000, connectTimeoutMs: 30_000 }

async function roundTrip (env: Record<string, string>, projectId: number): Promise<void> {
  const store = await createStoreFromConfig(loadConfig({ ...base, ...env }), SLOW_MACHINE)
  // Closed here, while its servers run: closed in an after hook, once they had stopped, its
  // connections waited out the 30 s timeouts and held the test process that long.
  try {
    await store.put({ projectId, projectPath: `acme/p${projectId}`, inboundEnabled: true, entries: [] })
    assert.equal((await store.get(projectId))?.projectPath, `acme/p${projectId}`)
  } finally {
    await store.close()
  }
}

/** The start fails: plain text to a TLS port, or a certificate nobody vouches for. */
async function refused (env: Record<string, string>): Promise<void> {
  await assert.rejects(createStoreFromConfig(loadConfig({ ...base, ...env })), /cannot reach Redis/, JSON.stringify(env))
}

describe('Redis over TLS', { concurrency: true }, () => {
  test('a single node: rediss:// with the CAs of GATE_REDIS_TLS_CA_FILE', async () => {
    const redis = await startRedis({ after }, { tls: true })
    await roundTrip({ GATE_REDIS_URL: `rediss://127.0.0.1:${redis.tlsPort!}/0`, GATE_REDIS_TLS_CA_FILE: TLS_CA_FILE }, 1)
    // Node's own CAs do not vouch for the test certificate; plain text to the TLS port gets no answer.
    await refused({ GATE_REDIS_URL: `rediss://127.0.0.1:${redis.tlsPort!}/0` })
    await refused({ GATE_REDIS_URL: `redis://127.0.0.1:${redis.tlsPort!}/0` })
  })

  test('Sentinel: GATE_REDIS_SENTINEL_TLS to the sentinels, GATE_REDIS_TLS to the master they name', async () => {
    const master = await startRedis({ after }, { tls: true })
    const sentinel = await startRedis({ after }, { tls: true, sentinel: { masterName: 'tls', masterPort: master.tlsPort! } })
    const env = { GATE_REDIS_SENTINELS: `127.0.0.1:${sentinel.tlsPort!}`, GATE_REDIS_SENTINEL_NAME: 'tls', GATE_REDIS_TLS_CA_FILE: TLS_CA_FILE }
    await roundTrip({ ...env, GATE_REDIS_TLS: 'true', GATE_REDIS_SENTINEL_TLS: 'true' }, 2)
    // Either link in plain text fails.
    await refused({ ...env, GATE_REDIS_TLS: 'true' })
    await refused({ ...env, GATE_REDIS_SENTINEL_TLS: 'true' })
  })

  test('Cluster: GATE_REDIS_TLS to every node', async () => {
    const cluster = await startRedisCluster({ after }, 3, 0, { tls: true })
    const nodes = cluster.tlsSeeds.map(n => `${n.host}:${n.port}`).join(',')
    await roundTrip({ GATE_REDIS_CLUSTER_NODES: nodes, GATE_REDIS_TLS: 'true', GATE_REDIS_TLS_CA_FILE: TLS_CA_FILE }, 3)
    await refused({ GATE_REDIS_CLUSTER_NODES: nodes })
  })

  test('serve: a certificate nobody vouches for stops the start, one line, exit 1', async t => {
    const redis = await startRedis({ after }, { tls: true })
    const outcome = await serveOutcome(t, { ...base, GATE_REDIS_URL: `rediss://:s3cret@127.0.0.1:${redis.tlsPort!}/0` })
    assert.equal(outcome.kind, 'refused')
    const { code, stderr } = outcome as { code: number, stderr: string }
    assert.equal(code, 1)
    assert.match(stderr, /^job-token-gate: cannot start: grants store unavailable: cannot reach Redis \(standalone\): .*self-signed certificate/)
    assert.doesNotMatch(stderr, /s3cret/)
  })
})

test('TLS settings with nowhere to go, or a CA file that cannot be used, stop the start', async () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ GATE_REDIS_URL: 'redis://127.0.0.1:6390/0', GATE_REDIS_TLS: 'true' }, /for GATE_REDIS_URL write rediss:\/\//],
    [{ GATE_REDIS_TLS: 'true' }, /GATE_REDIS_TLS needs GATE_REDIS_CLUSTER_NODES or GATE_REDIS_SENTINELS/],
    [{ GATE_REDIS_CLUSTER_NODES: '127.0.0.1:7000', GATE_REDIS_SENTINEL_TLS: 'true' }, /GATE_REDIS_SENTINEL_TLS needs GATE_REDIS_SENTINELS/],
    [{ GATE_REDIS_URL: 'redis://127.0.0.1:6390/0', GATE_REDIS_TLS_CA_FILE: TLS_CA_FILE }, /GATE_REDIS_TLS_CA_FILE needs a TLS connection/],
    [{ GATE_REDIS_CLUSTER_NODES: '127.0.0.1:7000', GATE_REDIS_TLS_CA_FILE: TLS_CA_FILE }, /GATE_REDIS_TLS_CA_FILE needs a TLS connection/],
    [{ GATE_REDIS_URL: 'rediss://127.0.0.1:6390/0', GATE_REDIS_TLS_CA_FILE: '' }, /GATE_REDIS_TLS_CA_FILE is set but empty/]
  ]
  for (const [env, message] of cases) {
    assert.throws(() => loadConfig({ ...base, ...env }), (err: unknown) => err instanceof ConfigError && message.test(err.message), JSON.stringify(env))
  }
  for (const [file, message] of [['/nonexistent/ca.pem', /cannot read \/nonexistent\/ca\.pem: ENOENT/], [TLS_CA_FILE.replace('.crt', '.key'), /holds no PEM certificate/]] as const) {
    await assert.rejects(createStoreFromConfig(loadConfig({ ...base, GATE_REDIS_URL: 'rediss://127.0.0.1:6390/0', GATE_REDIS_TLS_CA_FILE: file })),
      (err: unknown) => err instanceof ConfigError && message.test(err.message), file)
  }
})
