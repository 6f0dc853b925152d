// Finding: under Sentinel the store drops its connections that are on a node the sentinels no
// longer name master, on every answer a sentinel gives (each poll, each `+switch-master`, each
// read after a silence). ioredis ends such a connection with a FIN and waits for the other side
// to close it, destroying it only after `disconnectTimeout` (the command timeout) when the node
// hangs; each disconnect() adds a 'close' listener and a timer to the socket. While a hung old
// master's connection waited out that timeout, every further answer asked to drop it again:
// listeners piled up on the one socket, and past ten Node printed MaxListenersExceededWarning.
// Now a connection is dropped once.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Duplex } from 'node:stream'
import { SentinelConnector } from 'ioredis'
import { createRedisStore } from '../../src/grants/redis-store.ts'
import { startRedis } from '../helpers/redis.ts'
import { eventually } from '../helpers/eventually.ts'

test('sentinel: a connection to a node no longer named master is dropped once, however often the sentinels say so', async t => {
  // Every socket the store opens to a data node, to count the listeners on it.
  const sockets: Duplex[] = []
  const proto = SentinelConnector.prototype as unknown as { connect: (...args: unknown[]) => Promise<Duplex> }
  const connect = proto.connect
  proto.connect = async function (this: unknown, ...args: unknown[]) {
    const stream = await connect.apply(this, args)
    sockets.push(stream)
    return stream
  }
  t.after(() => { proto.connect = connect })
  const first = await startRedis(t)
  const second = await startRedis(t)
  const sentinel = await startRedis(t, { sentinel: { masterName: 'drop', masterPort: first.port } })
  // A long command timeout: a connection dropped from a hung node waits that long to be destroyed.
  const store = await createRedisStore({ sentinels: [{ host: sentinel.host, port: sentinel.port }], sentinelName: 'drop', keyPrefix: 'drop', commandTimeoutMs: 6000 })
  t.after(() => store.close())
  assert.equal((await store.health()).subscribedTo, `127.0.0.1:${first.port}`)

  // The master hangs (its connections stay open), and the sentinel names another, which the
  // store hears every second while the old connections wait to be destroyed.
  first.pause()
  t.after(() => first.resume())
  sentinel.cli('SENTINEL', 'REMOVE', 'drop')
  sentinel.cli('SENTINEL', 'MONITOR', 'drop', '127.0.0.1', String(second.port), '1')
  let most = 0
  await eventually(async () => {
    for (const socket of sockets) if (!socket.destroyed) most = Math.max(most, socket.listenerCount('close'))
    return (await store.health()).subscribedTo === `127.0.0.1:${second.port}`
  }, { timeoutMs: 30_000, intervalMs: 100, message: 'the subscription on the master now named' })
  // ioredis's own listener, and the one of the one disconnect.
  assert.ok(most <= 2, `${most} 'close' listeners on one socket`)
})
