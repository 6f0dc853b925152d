// Behind the shipped nginx configuration, the gate's refusals are answered by nginx itself
// (`return` in the error_page locations, auth_request passing on no body): they went out without
// the `Cache-Control: no-cache` the gate puts on every refusal it answers in proxy mode, as GitLab's
// API does on its errors. A shared cache in front that keeps unmarked answers (a
// `proxy_cache_valid any`, a CDN's default TTL) kept one job's 403 for a URL, its message naming
// that job's project, and served it to the next job allowed there, which never reached GitLab.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { needsNginx, startNginx, startShippedNginx } from '../helpers/nginx.ts'

/** nginx caching every answer it proxies for a minute unless the answer says otherwise. */
async function microCache (t: TestContext, port: number): Promise<string> {
  const { base } = await startNginx(t, (dir, [own]) => `proxy_cache_path ${dir}/cache keys_zone=front:1m;
  server { listen 127.0.0.1:${own!}; location / { proxy_pass http://127.0.0.1:${port}; proxy_cache front; proxy_cache_valid any 1m; add_header X-Cache-Status $upstream_cache_status always; } }`, '/-/nothing')
  return base
}

test('behind the shipped nginx, a refusal is marked no-cache and a shared cache in front keeps none', { skip: needsNginx }, async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' })
  const { base, port } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: g.gate.authAddress()!.port, api: g.gate.address().port })
  // 401 (a finished job), 403 (not allowlisted), and a status auth_request turns into 500 (400).
  for (const [path, token, status] of [
    ['/api/v4/projects/200/packages/maven/a/b/1/b.jar', TOKENS.appFinished, 401],
    ['/api/v4/projects/200/packages', TOKENS.tools, 403],
    ['/api/v4/projects/200/%2e%2e/packages', TOKENS.app, 400]
  ] as const) {
    const res = await send(base, 'GET', path, { 'job-token': token })
    assert.equal(res.status, status, `${path}: ${res.text}`)
    assert.equal(res.headers['cache-control'], 'no-cache', path)
  }

  // acme/lib (200) lists every acme job but not other/tools' (300).
  const front = await microCache(t, port)
  const PACKAGES = '/api/v4/projects/200/packages'
  const refused = await send(front, 'GET', PACKAGES, { 'job-token': TOKENS.tools })
  assert.equal(refused.status, 403, refused.text)
  const allowed = await send(front, 'GET', PACKAGES, { 'job-token': TOKENS.app })
  assert.equal(allowed.status, 200, `the other job's refusal served from the cache: ${allowed.text}`)
  assert.equal(g.seen.filter(s => s.url === PACKAGES).length, 1, 'the allowed job reached GitLab')
})
