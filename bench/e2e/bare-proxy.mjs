// The floor of proxying in Node: node:http in front of an undici Pool with the gate's pool
// settings (src/proxy/forward.ts, src/config.ts defaults), headers copied without the hop-by-hop
// ones, bodies streamed both ways. Nothing decided, logged or counted.
import { createServer } from 'node:http'
import { Pool } from 'undici'

const origin = process.argv[2]
const pool = new Pool(origin, { connections: null, headersTimeout: 60_000, bodyTimeout: 300_000, connectTimeout: 10_000, keepAliveTimeout: 30_000 })
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host'])

const server = createServer((req, res) => {
  const headers = {}
  for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
  pool.request({ method: req.method, path: req.url, headers, body: hasBody ? req : null }).then(upstream => {
    const out = {}
    for (const [k, v] of Object.entries(upstream.headers)) if (!HOP.has(k)) out[k] = v
    res.writeHead(upstream.statusCode, out)
    upstream.body.pipe(res)
  }, () => {
    res.writeHead(502, { 'content-type': 'application/json' })
    res.end('{"message":"502 Bad Gateway"}')
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
