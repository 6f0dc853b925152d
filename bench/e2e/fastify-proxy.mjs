// @fastify/http-proxy in front of the origin: the generic Node proxy a user would otherwise
// assemble (undici underneath, the gate's pool size).
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'

const app = Fastify({ logger: false })
await app.register(proxy, { upstream: process.argv[2], undici: { connections: null, pipelining: 1, keepAliveTimeout: 30_000 } })
await app.listen({ port: 0, host: '127.0.0.1' })
process.send({ port: app.server.address().port })
