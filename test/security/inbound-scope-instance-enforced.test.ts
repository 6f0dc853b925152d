// Finding: `PATCH /projects/:id/job_token_scope` with `enabled=false` while the instance enforces
// the inbound scope (GATE_ENFORCE_INBOUND_SCOPE, GitLab's enforce_ci_inbound_job_token_scope_enabled,
// on by default since 18.0) answered 204 and stored the project's scope as off. GitLab refuses
// that change, 400 "Job token scope cannot be disabled for this project because it is enforced
// for the instance.", and keeps the project's own setting on. The gate's stored `false` changed
// nothing while the instance enforced, but the day the instance setting was turned off every
// project a Maintainer had ever "disabled" so was open to every job on the instance, where
// GitLab would still hold it to its allowlist; and a client that turns to allowlisting on
// GitLab's 400 was told the scope was off.
//
// Now the gate refuses it as GitLab does, 400 ADMIN_INBOUND_SCOPE_ENFORCED, nothing written or
// audited; turning the scope on, and off where the instance does not enforce it, are unchanged.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { loadConfig } from '../../src/config.ts'
import { createGate } from '../../src/gate/server.ts'
import { createJobResolver } from '../../src/identity/resolver.ts'
import { ADMIN, USERS, adminGate } from '../helpers/admin-gate.ts'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const json = { 'content-type': 'application/json' }
const PATH = '/api/v4/projects/300/job_token_scope'

test('job_token_scope: turning the inbound scope off while the instance enforces it is refused, as GitLab refuses it', async t => {
  const g = await adminGate(t)
  const version = await g.store.version(300)
  for (const [who, headers, body] of [
    ['operator', { 'private-token': ADMIN, ...json }, '{"enabled": false}'],
    ['operator, form', { 'private-token': ADMIN, 'content-type': 'application/x-www-form-urlencoded' }, 'enabled=false']
  ] as const) {
    const res = await send(g.url, 'PATCH', PATH, headers, body)
    assert.equal(res.status, 400, `${who}: ${res.text}`)
    assert.equal(res.json().code, 'ADMIN_INBOUND_SCOPE_ENFORCED')
    assert.equal(res.json().message, '400 Bad request - Job token scope cannot be disabled for this project because it is enforced for the instance.')
  }
  // A Maintainer of acme/lib (200), the same.
  const maintainer = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_scope', { 'private-token': USERS.maintainer, ...json }, '{"enabled": false}')
  assert.equal(maintainer.status, 400, maintainer.text)
  assert.equal(maintainer.json().code, 'ADMIN_INBOUND_SCOPE_ENFORCED')
  assert.equal(await g.store.version(300), version, 'nothing written')
  assert.equal((await g.store.get(300))?.inboundEnabled, true)
  assert.equal((await g.store.readAudit(300, { offset: 0, limit: 10 })).total, 0, 'nothing audited')
  assert.equal((await g.store.readAudit(200, { offset: 0, limit: 10 })).total, 0, 'nothing audited')
  // Turning it on is still a change the gate makes.
  const on = await send(g.url, 'PATCH', PATH, { 'private-token': ADMIN, ...json }, '{"enabled": true}')
  assert.equal(on.status, 204, on.text)
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')

  // The instance stops enforcing: other/tools (300), which lists nobody, still holds other jobs off.
  const config = loadConfig({
    GATE_UPSTREAM_URL: g.gitlab.url,
    GATE_SERVICE_TOKEN: g.gitlab.serviceToken,
    GATE_LISTEN: '127.0.0.1:0',
    GATE_HEALTH_LISTEN: '127.0.0.1:0',
    GATE_DRAIN_TIMEOUT_MS: '1000',
    GATE_ENFORCE_INBOUND_SCOPE: 'false'
  })
  const relaxed = createGate(config, { store: g.store, resolver: createJobResolver({ upstream: g.gitlab.url, serviceToken: g.gitlab.serviceToken }), logger: pino({ level: 'silent' }) })
  await relaxed.listen()
  t.after(() => relaxed.close(0))
  const job = await send(`http://127.0.0.1:${relaxed.address().port}`, 'GET', '/api/v4/projects/300/packages', { 'job-token': TOKENS.app })
  assert.equal(job.status, 403, job.text)
  assert.equal(job.json().code, 'NOT_ALLOWLISTED')
})

test('job_token_scope: where the instance does not enforce it, the scope is turned off (204)', async t => {
  const g = await adminGate(t, { GATE_ENFORCE_INBOUND_SCOPE: 'false' })
  const off = await send(g.url, 'PATCH', PATH, { 'private-token': ADMIN, ...json }, '{"enabled": false}')
  assert.equal(off.status, 204, off.text)
  assert.equal((await g.store.get(300))?.inboundEnabled, false)
  assert.deepEqual((await send(g.url, 'GET', PATH, { 'private-token': ADMIN })).json(), { inbound_enabled: false, outbound_enabled: false })
})
