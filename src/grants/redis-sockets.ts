// ioredis listens to each connection's socket with `once('error')`. A TLS socket can fail twice:
// the certificate refused, then the server's alert (Redis answers Node's refusal with a "decode
// error" alert in about one connection in twenty). The second 'error' finds no listener, and an
// 'error' nobody listens to ends the process: a Redis whose certificate is not trusted, or
// anything on the path that answers TLS, would restart the gate in a loop instead of leaving it
// to answer 503. Every socket ioredis opens (standalone, Sentinel's master and sentinels,
// Cluster's nodes: all go through these two connectors) keeps a listener as long as it lives;
// ioredis still handles the first error as it did.

import { createRequire } from 'node:module'
import type { Duplex } from 'node:stream'
import { SentinelConnector } from 'ioredis'

interface Connector { connect: (...args: never[]) => Promise<Duplex> }
type ConnectorClass = abstract new (...args: never[]) => Connector

const require = createRequire(import.meta.url)
// Not exported by the package's index; every Redis client without a sentinel uses it.
const StandaloneConnector = (require('ioredis/built/connectors/StandaloneConnector') as { default: ConnectorClass }).default

const GUARDED = Symbol('jtg.socketErrorsGuarded')

function ignore (): void {}

function guard (connector: ConnectorClass): void {
  const proto = connector.prototype as Connector & { [GUARDED]?: true }
  if (proto[GUARDED] === true) return
  const connect = proto.connect
  proto.connect = async function (this: Connector, ...args: never[]): Promise<Duplex> {
    const stream = await connect.apply(this, args)
    stream.on('error', ignore)
    return stream
  }
  proto[GUARDED] = true
}

/** Keeps an error listener on every socket ioredis opens from now on. Idempotent. */
export function guardRedisSocketErrors (): void {
  guard(StandaloneConnector)
  guard(SentinelConnector as unknown as ConnectorClass)
}
