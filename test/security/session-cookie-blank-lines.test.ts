// Finding: the users' package rules read a request's Cookie lines joined as Puma joins them, but
// left blank lines out, and Puma keeps them: `Cookie: ` then `Cookie: _gitlab_session=x` is
// `, _gitlab_session=x` to Rails, a cookie named `, _gitlab_session`. In forward-auth the front
// proxy, not the gate, sends the lines on to GitLab as they came. A Developer who sent a blank
// Cookie line, then `_gitlab_session=<made up>; _gitlab_session=<their session>`, was read by the
// gate as the made-up session (Rack keeps a name's first cookie), which signs no one in, so the
// package delete went through; GitLab read the first cookie as `, _gitlab_session` and the second
// as the session, and deleted the package as the Developer where the project keeps deletes to
// Maintainers. The gate now reads every line Puma joins, blank ones too.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { rawRequest, send } from '../helpers/http.ts'
import { needsNginx, startShippedNginx } from '../helpers/nginx.ts'

test('forward-auth: a blank Cookie line before a Developer\'s session does not hide it from the package rules', async t => {
  const g = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_ORIGINAL: 'request-line' })
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { npm: { delete: 'maintainer' }, ml_model: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  g.gitlab.packages.push({ id: 5, name: 'left-pad', version: '1.0.0', packageType: 'npm', projectId: 200, createdAt: '2026-01-01T00:00:00Z' })
  const port = g.gate.authAddress()!.port
  const session = `_gitlab_session=made-up; _gitlab_session=${USERS.developer}`
  for (const [method, path] of [['DELETE', '/api/v4/projects/200/packages/5'], ['DELETE', '/acme/lib/-/ml/models/7']] as const) {
    // As the client sent them (Envoy's check request is the request; Traefik copies every line).
    for (const blank of ['Cookie: ', 'Cookie:', 'Cookie: \t ']) {
      const answer = await rawRequest(port, [`${method} ${path} HTTP/1.1`, blank, `Cookie: ${session}`, 'X-CSRF-Token: csrf'])
      assert.equal(answer.status, 403, `${method} ${path} after ${JSON.stringify(blank)}: ${answer.body}`)
      assert.equal(JSON.parse(answer.body).code, 'PACKAGE_MAINTAINER_ONLY')
    }
    // Without the blank line Rack reads the made-up session first, as the gate does: no one.
    const alone = await rawRequest(port, [`${method} ${path} HTTP/1.1`, `Cookie: ${session}`, 'X-CSRF-Token: csrf'])
    assert.equal(alone.status, 200, alone.body)
    // A Maintainer's session after a blank line is still let through.
    const maintainer = await rawRequest(port, [`${method} ${path} HTTP/1.1`, 'Cookie: ', `Cookie: _gitlab_session=made-up; _gitlab_session=${USERS.maintainer}`, 'X-CSRF-Token: csrf'])
    assert.equal(maintainer.status, 200, maintainer.body)
  }
})

test('proxy: Cookie lines with a blank one are forwarded as Puma joins them, the value the package rules read', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const port = Number(new URL(g.url).port)
  const refused = await rawRequest(port, ['DELETE /acme/lib/-/ml/models/7.json HTTP/1.1', 'Cookie: ', `Cookie: _gitlab_session=made-up; _gitlab_session=${USERS.developer}`, 'X-CSRF-Token: csrf'])
  assert.equal(refused.status, 403, refused.body)
  const before = g.seen.length
  const passed = await rawRequest(port, ['DELETE /acme/lib/-/ml/models/7.json HTTP/1.1', 'Cookie: theme=dark', 'Cookie: ', `Cookie: _gitlab_session=${USERS.developer}`, 'X-CSRF-Token: csrf'])
  assert.equal(passed.status, 200, passed.body)
  assert.equal(g.seen[before]!.headers.cookie, `theme=dark, , _gitlab_session=${USERS.developer}`)
})

test('behind the shipped nginx, a blank Cookie line before a Developer\'s session does not let the package delete through', { skip: needsNginx }, async t => {
  const g = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' })
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { npm: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  g.gitlab.packages.push({ id: 5, name: 'left-pad', version: '1.0.0', packageType: 'npm', projectId: 200, createdAt: '2026-01-01T00:00:00Z' })
  const { port } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: g.gate.authAddress()!.port, api: g.gate.address().port })
  const before = g.seen.length
  const answer = await rawRequest(port, ['DELETE /api/v4/projects/200/packages/5 HTTP/1.1', 'Cookie: ', `Cookie: _gitlab_session=made-up; _gitlab_session=${USERS.developer}`])
  assert.equal(answer.status, 403, answer.body)
  assert.equal(JSON.parse(answer.body).code, 'PACKAGE_MAINTAINER_ONLY')
  assert.equal(g.seen.slice(before).filter(r => r.method === 'DELETE').length, 0)
})
