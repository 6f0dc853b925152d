// The gate answers some of GitLab's own paths itself (the configuration API, its denies), and
// GitLab's API says on every answer whether a cache may keep it: Rails' Rack::ETag sends
// `max-age=0, private, must-revalidate` with an answer and `no-cache` with an error. The gate's
// answers said nothing, so a shared cache in front of GitLab that keeps what is not marked (an
// nginx micro-cache with `proxy_cache_valid`, a CDN's default TTL) kept a Maintainer's allowlist
// and served it to anyone who asked that URL, no token needed.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, USERS } from '../helpers/admin-gate.ts'
import { TOKENS } from '../helpers/gate.ts'
import { rawRequest, send } from '../helpers/http.ts'
import { needsNginx, startNginx } from '../helpers/nginx.ts'

const ALLOWLIST = '/api/v4/projects/200/job_token_scope/allowlist'
const PRIVATE = 'max-age=0, private, must-revalidate'

test('every answer the gate writes says whether a cache may keep it, as GitLab\'s API does', async (t) => {
  const g = await adminGate(t)
  const read = await send(g.url, 'GET', ALLOWLIST, { 'private-token': USERS.maintainer })
  assert.equal(read.status, 200, read.text)
  assert.equal(read.headers['cache-control'], PRIVATE, 'an answer is for its caller only')
  const anonymous = await send(g.url, 'GET', ALLOWLIST)
  assert.equal(anonymous.status, 401)
  assert.equal(anonymous.headers['cache-control'], 'no-cache')
  const denied = await send(g.url, 'GET', '/api/v4/projects/300/packages', { 'job-token': TOKENS.app })
  assert.equal(denied.status, 403)
  assert.equal(denied.headers['cache-control'], 'no-cache')
  // A request Node's parser refuses is answered on the socket, by the gate too.
  const refused = await rawRequest(Number(new URL(g.url).port), ['GET /api/v4/projects/200/packages HTTP/1.1', 'X-A: a\x00b'])
  assert.equal(refused.status, 400)
  assert.equal(refused.headers['cache-control'], 'no-cache')
})

/** nginx caching what it proxies to the gate for a minute unless the answer says otherwise. */
async function microCache (t: TestContext, gatePort: number): Promise<string> {
  const { base } = await startNginx(t, (dir, [port]) => `proxy_cache_path ${dir}/cache keys_zone=api:1m;
  server { listen 127.0.0.1:${port!}; location / { proxy_pass http://127.0.0.1:${gatePort}; proxy_cache api; proxy_cache_valid 200 404 1m; add_header X-Cache-Status $upstream_cache_status always; } }`, '/-/nothing')
  return base
}

test('a shared cache in front keeps no configuration API answer for the next client', { skip: needsNginx }, async (t) => {
  const g = await adminGate(t)
  const base = await microCache(t, Number(new URL(g.url).port))
  const read = await send(base, 'GET', ALLOWLIST, { 'private-token': USERS.maintainer })
  assert.equal(read.status, 200, read.text)
  assert.equal(read.headers['x-cache-status'], 'MISS')
  // The same URL without a token: the gate is asked, and refuses.
  const anonymous = await send(base, 'GET', ALLOWLIST)
  assert.equal(anonymous.status, 401, `the Maintainer's answer served from the cache: ${anonymous.text}`)
  assert.equal(anonymous.json().code, 'ADMIN_UNAUTHENTICATED')
})
