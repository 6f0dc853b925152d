// The nginx the tests start is on a port found free, then handed to nginx: another test's
// server, in another process, may take it in between. nginx then cannot bind it, and until it
// gives up, that server answered the helper's probe and the test's requests in nginx's place (a
// GraphQL fake's `{"data":{"upstream":true}}` where the gate's 201 was expected). The helper
// takes nginx as started only once nginx holds its ports, and starts it elsewhere otherwise.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { send } from '../helpers/http.ts'
import { launchNginx, NginxBindError, needsNginx, startNginx } from '../helpers/nginx.ts'

const SITE = (port: number): string => `server { listen 127.0.0.1:${port}; location / { return 200 "nginx\\n"; } }`

test('a server already on nginx\'s port never passes for nginx', { skip: needsNginx }, async (t) => {
  const foreign = createServer((req, res) => { req.resume(); res.end('{"data":{"upstream":true}}') })
  await new Promise<void>(resolve => foreign.listen(0, '127.0.0.1', resolve))
  t.after(() => { foreign.close() })
  const { port } = foreign.address() as AddressInfo

  await assert.rejects(launchNginx(t, [port], () => SITE(port), '/'), (err: unknown) =>
    err instanceof NginxBindError && /Address already in use/.test(err.message))
})

test('nginx started by the helper answers on the port it names', { skip: needsNginx }, async (t) => {
  const { base, ports } = await startNginx(t, (_dir, [port]) => SITE(port!), '/')
  assert.equal(base, `http://127.0.0.1:${ports[0]!}`)
  assert.equal((await send(base, 'GET', '/')).text, 'nginx\n')
})
