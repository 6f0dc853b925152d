// Finding: a Sentinel or Cluster node written as a Redis URL with its password and no database
// (`redis://:<password>@node:6379`, as GATE_REDIS_URL is written, or `user:<password>@node:6379`)
// ends in `:port` like the host:port entries these lists take, so it was taken whole for a host
// name: ioredis could not resolve it, and the start failed after its timeout with a line quoting
// that "host", password included. Only such an entry with a path (`.../0`) was refused without
// it. A host holding `@`, `/` or white space is now refused at once, printed without the password.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, loadConfig } from '../../src/config.ts'
import { createStoreFromConfig } from '../../src/gate/deps.ts'
import { serveOutcome } from '../helpers/serve.ts'

const PASSWORD = 'RedisNodeS3cret'

test('a Sentinel or Cluster node written with a password is refused, without printing it', async () => {
  for (const [env, entry] of [
    ['GATE_REDIS_CLUSTER_NODES', `redis://:${PASSWORD}@127.0.0.1:6379`],
    ['GATE_REDIS_CLUSTER_NODES', `127.0.0.1:7000,rediss://default:${PASSWORD}@127.0.0.1:7001`],
    ['GATE_REDIS_SENTINELS', `admin:${PASSWORD}@127.0.0.1:26379`],
    ['GATE_REDIS_SENTINELS', `redis://:${PASSWORD}@sentinel-0:26379`]
  ] as const) {
    const config = loadConfig({ GATE_UPSTREAM_URL: 'http://gitlab', [env]: entry })
    await assert.rejects(createStoreFromConfig(config, { connectTimeoutMs: 500 }), (err: Error) => {
      assert.ok(err instanceof ConfigError, `${entry}: ${err.message}`)
      assert.match(err.message, new RegExp(`^${env} must list host:port entries`))
      assert.ok(!err.message.includes(PASSWORD), err.message)
      return true
    })
  }
})

test('serve with such a node: refused at once, exit 2, one line without the password', async t => {
  const outcome = await serveOutcome(t, { GATE_UPSTREAM_URL: 'http://127.0.0.1:1', GATE_REDIS_CLUSTER_NODES: `redis://:${PASSWORD}@127.0.0.1:6379` })
  assert.equal(outcome.kind, 'refused', 'serve started')
  const { code, stderr } = outcome as { code: number | null, stderr: string }
  assert.equal(code, 2, stderr)
  assert.equal(stderr.trimEnd().split('\n').length, 1, stderr)
  assert.match(stderr, /^job-token-gate: GATE_REDIS_CLUSTER_NODES must list host:port entries, got "redis:\/\/\*\*\*@127\.0\.0\.1:6379"/)
  assert.ok(!stderr.includes(PASSWORD), stderr)
})
