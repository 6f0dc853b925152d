// Finding: the shipped nginx configuration (deploy/nginx/job-token-gate.conf) added the client's
// address to X-Forwarded-For in `location /api/v4/` and the gate's own locations, but not in
// `location /`, which passed the client's X-Forwarded-For to GitLab as it came. GitLab trusts
// nginx's address (it must, to read the header at all) and takes the last address it does not
// trust as the client's: on git over HTTP, the container registry's /jwt/auth and the web UI a
// client named any address it liked, and GitLab's bans of addresses that fail to authenticate,
// its rate limits by address and its audit logs went by that one. Every location now adds the
// real address last.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { needsNginx, startShippedNginx } from '../helpers/nginx.ts'

test('every location of the shipped nginx configuration gives GitLab the client\'s own address last in X-Forwarded-For', { skip: needsNginx }, async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const { base } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: g.gate.authAddress()!.port, api: g.gate.address().port })

  for (const path of ['/acme/lib.git/info/refs?service=git-upload-pack', '/users/sign_in', '/api/v4/projects/200/packages', '/api/graphql']) {
    const before = g.seen.length
    const graphql = path === '/api/graphql'
    const res = graphql
      ? await send(base, 'POST', path, { 'x-forwarded-for': '203.0.113.9', 'content-type': 'application/json' }, '{"query":"{ currentUser { id } }"}')
      : await send(base, 'GET', path, { 'x-forwarded-for': '203.0.113.9' })
    assert.equal(res.status, 200, `${path}: ${res.text}`)
    const reached = g.seen.slice(before).find(s => s.url === path)
    assert.ok(reached !== undefined, `${path} reached GitLab`)
    // nginx connects from 127.0.0.1 here; through the gate's API listener the gate adds nginx's.
    const chain = String(reached.headers['x-forwarded-for']).split(/,\s*/)
    assert.ok(chain.length >= 2 && chain[0] === '203.0.113.9' && chain[1] === '127.0.0.1', `${path}: X-Forwarded-For ${String(reached.headers['x-forwarded-for'])}`)
  }
})
