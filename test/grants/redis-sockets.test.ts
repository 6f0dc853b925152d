// A Redis connection whose socket fails twice does not end the process. ioredis listens to a
// socket's errors once; a TLS socket to a Redis whose certificate is not trusted fails twice in
// about one connection in twenty (the refusal, then Redis's alert), and the second error, with no
// listener, ended the gate (test/grants/redis-tls.slow.ts met it as an uncaught exception). Once
// a store has started, every socket ioredis opens keeps a listener: emitted here by hand, since
// which connection gets the alert is luck.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import type { Duplex } from 'node:stream'
import { Redis } from 'ioredis'
import { loadConfig } from '../../src/config.ts'
import { createStoreFromConfig } from '../../src/gate/deps.ts'
import { startRedis } from '../helpers/redis.ts'

async function ready (client: Redis): Promise<Duplex> {
  after(() => client.disconnect())
  client.on('error', () => {})
  if (client.status !== 'ready') await new Promise(resolve => client.once('ready', resolve))
  return client.stream as Duplex
}

test('a Redis socket that fails twice leaves the process running, standalone and through a sentinel', { timeout: 60_000 }, async () => {
  const master = await startRedis({ after })
  const sentinel = await startRedis({ after }, { sentinel: { masterName: 'twice', masterPort: master.port } })
  const store = await createStoreFromConfig(loadConfig({ GATE_UPSTREAM_URL: 'http://127.0.0.1:1', GATE_REDIS_URL: master.url }))
  after(() => store.close())

  const clients = [
    new Redis(master.url, { retryStrategy: () => 50 }),
    new Redis({ sentinels: [{ host: '127.0.0.1', port: sentinel.port }], name: 'twice', retryStrategy: () => 50 })
  ]
  for (const client of clients) {
    const socket = await ready(client)
    assert.doesNotThrow(() => {
      socket.emit('error', new Error('certificate refused'))
      socket.emit('error', new Error('tlsv1 alert decode error'))
    })
    // The client still answers; a socket that closes after failing is replaced as before.
    assert.equal(await client.ping(), 'PONG')
    socket.destroy()
    await new Promise(resolve => client.once('ready', resolve))
    assert.equal(await client.ping(), 'PONG')
  }
})
