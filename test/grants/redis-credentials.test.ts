// Redis credentials for Sentinel and Cluster: GATE_REDIS_URL carries its own, and a
// password-protected Sentinel deployment (GitLab's chart protects its Redis) needs the data
// nodes' password and, where the sentinels have one, theirs. Credentials the gate is not told
// where to use stop the start rather than being ignored.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, loadConfig } from '../../src/config.ts'
import { createStoreFromConfig } from '../../src/gate/deps.ts'
import { startRedis } from '../helpers/redis.ts'

const base = { GATE_UPSTREAM_URL: 'http://127.0.0.1:1' }

test('a password-protected Sentinel deployment is reached with GATE_REDIS_PASSWORD and GATE_REDIS_SENTINEL_PASSWORD', async () => {
  const master = await startRedis({ after }, { args: ['--requirepass', 'data-secret'] })
  const sentinel = await startRedis({ after }, { sentinel: { masterName: 'locked', masterPort: master.port, authPass: 'data-secret', requirePass: 'sentinel-secret' } })
  const env = { ...base, GATE_REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`, GATE_REDIS_SENTINEL_NAME: 'locked' }

  const store = await createStoreFromConfig(loadConfig({ ...env, GATE_REDIS_PASSWORD: 'data-secret', GATE_REDIS_SENTINEL_PASSWORD: 'sentinel-secret' }))
  after(() => store.close())
  await store.put({ projectId: 9, projectPath: 'acme/nine', inboundEnabled: true, entries: [] })
  assert.equal((await store.get(9))?.projectPath, 'acme/nine')

  // Without either password the store does not start, and says why at once (Redis refusing the
  // credentials, not a connect timeout run out), rather than run without Redis.
  const refused = (err: unknown): boolean => err instanceof Error && /cannot reach Redis/.test(err.message) && /NOAUTH/.test(err.message) && !/not ready after/.test(err.message)
  await assert.rejects(createStoreFromConfig(loadConfig({ ...env, GATE_REDIS_SENTINEL_PASSWORD: 'sentinel-secret' })), refused)
  await assert.rejects(createStoreFromConfig(loadConfig({ ...env, GATE_REDIS_PASSWORD: 'data-secret' })), refused)
})

test('Redis credentials with nowhere to go stop the start, naming the settings', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ GATE_REDIS_URL: 'redis://127.0.0.1:6390/0', GATE_REDIS_PASSWORD: 'x' }, /GATE_REDIS_URL carries its own/],
    [{ GATE_REDIS_PASSWORD: 'x' }, /need GATE_REDIS_CLUSTER_NODES or GATE_REDIS_SENTINELS/],
    [{ GATE_REDIS_USERNAME: 'gate' }, /need GATE_REDIS_CLUSTER_NODES or GATE_REDIS_SENTINELS/],
    [{ GATE_REDIS_CLUSTER_NODES: '127.0.0.1:7000', GATE_REDIS_SENTINEL_PASSWORD: 'x' }, /GATE_REDIS_SENTINEL_PASSWORD needs GATE_REDIS_SENTINELS/],
    [{ GATE_REDIS_SENTINELS: '127.0.0.1:26379', GATE_REDIS_PASSWORD: '' }, /GATE_REDIS_PASSWORD is set but empty/]
  ]
  for (const [env, message] of cases) {
    assert.throws(() => loadConfig({ ...base, ...env }), (err: unknown) => err instanceof ConfigError && message.test(err.message), JSON.stringify(env))
  }
})
