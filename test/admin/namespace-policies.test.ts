// A root namespace's job_token_policies_enabled through the configuration API
// (GET|PUT /groups/:id/job_token_policies, its audit events): who may set it, which namespaces
// take it, every validation rule, the audit trail, and a change on one replica enforced by the
// next request on another sharing Redis. The world (test/helpers/gate.ts): groups acme (10) >
// acme/platform (11), other (20); acme/lib (200) lets acme/platform/app (100) read packages only.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { startRedis } from '../helpers/redis.ts'
import { eventually } from '../helpers/eventually.ts'
import { ADMIN, USERS, adminGate } from '../helpers/admin-gate.ts'

const op = { 'private-token': ADMIN }
const json = { 'content-type': 'application/json' }
const body = (value: unknown): string => JSON.stringify(value)
const ACME = '/api/v4/groups/acme/job_token_policies'
// Creating a deployment needs admin_deployments and admin_environments: app's entry has neither.
const DEPLOY = '/api/v4/projects/200/deployments'

test('namespace policies: the operator sets, reads (by path or id) and removes the setting; each change is audited', async t => {
  const g = await adminGate(t)
  assert.deepEqual((await send(g.url, 'GET', ACME, op)).json(), { full_path: 'acme', job_token_policies_enabled: null }, 'unset: the instance decides')

  const set = await send(g.url, 'PUT', ACME, { ...op, ...json, 'x-request-id': 'ns-off' }, body({ job_token_policies_enabled: false }))
  assert.equal(set.status, 200, set.text)
  assert.deepEqual(set.json(), { full_path: 'acme', job_token_policies_enabled: false })
  assert.deepEqual(await g.store.getNamespace('acme'), { namespacePath: 'acme', jobTokenPoliciesEnabled: false, version: 1 })
  assert.equal((await send(g.url, 'GET', '/api/v4/groups/10/job_token_policies', op)).json().job_token_policies_enabled, false, 'the root group by id (GitLab names it)')
  assert.equal((await send(g.url, 'GET', '/api/v4/groups/ACME/job_token_policies', op)).json().job_token_policies_enabled, false, 'paths are case-insensitive')

  const byId = await send(g.url, 'PUT', '/api/v4/groups/10/job_token_policies', { ...op, 'content-type': 'application/x-www-form-urlencoded' }, 'job_token_policies_enabled=true')
  assert.equal(byId.status, 200, byId.text)
  assert.equal(byId.json().job_token_policies_enabled, true, 'form bodies say it as text')
  const removed = await send(g.url, 'PUT', ACME, { ...op, ...json }, body({ job_token_policies_enabled: null }))
  assert.deepEqual(removed.json(), { full_path: 'acme', job_token_policies_enabled: null })
  assert.equal(await g.store.getNamespace('acme'), null, 'null removes the setting')

  const events = await send(g.url, 'GET', `${ACME}/audit_events?per_page=2`, op)
  assert.equal(events.status, 200, events.text)
  assert.equal(events.headers['x-total'], '3')
  assert.equal(events.headers['x-next-page'], '2')
  const oldest = (await send(g.url, 'GET', `${ACME}/audit_events?page=3&per_page=1`, op)).json() as Array<Record<string, unknown>>
  assert.deepEqual({ ...oldest[0], created_at: undefined }, {
    namespace: 'acme',
    actor: { type: 'operator' },
    action: 'update_namespace_job_token_policies',
    before: { job_token_policies_enabled: null },
    after: { job_token_policies_enabled: false },
    created_at: undefined,
    request_id: 'ns-off'
  })
  assert.ok(!Number.isNaN(Date.parse(String(oldest[0]!.created_at))))
  assert.deepEqual((events.json() as Array<Record<string, unknown>>).map(e => e.after), [{ job_token_policies_enabled: null }, { job_token_policies_enabled: true }], 'newest first')
  const logged = g.logs.filter(l => l.audit === true && l.namespace === 'acme')
  assert.equal(logged.length, 3, 'one audit log line per change')
  assert.equal(g.seen.length, 0, 'nothing was forwarded to GitLab')
})

test('namespace policies: only a root namespace takes the setting — a subgroup is 400 naming the rule, by path or by id', async t => {
  const g = await adminGate(t)
  for (const path of ['/api/v4/groups/acme%2Fplatform/job_token_policies', '/api/v4/groups/11/job_token_policies']) {
    const res = await send(g.url, 'PUT', path, { ...op, ...json }, body({ job_token_policies_enabled: false }))
    assert.equal(res.status, 400, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'ADMIN_VALIDATION_FAILED')
    assert.match(res.text, /acme\/platform, a subgroup/)
    assert.match(res.text, /root namespaces/)
    assert.equal((await send(g.url, 'GET', path, op)).status, 400, 'reading one is refused alike')
  }
  const missing = await send(g.url, 'PUT', '/api/v4/groups/99/job_token_policies', { ...op, ...json }, body({ job_token_policies_enabled: false }))
  assert.equal(missing.status, 404, missing.text)
  assert.equal(missing.json().code, 'ADMIN_NOT_FOUND')
  assert.equal(await g.store.getNamespace('acme'), null)
  assert.equal(g.seen.length, 0)
})

test('namespace policies: only the operator token may read or change it — a group Owner, a Maintainer, a job token and no credential are refused', async t => {
  const g = await adminGate(t)
  const value = body({ job_token_policies_enabled: false })
  const cases: Array<[string, Record<string, string>, number, string]> = [
    ['group Owner', { 'private-token': USERS.owner }, 403, 'ADMIN_FORBIDDEN'],
    ['project Maintainer', { authorization: `Bearer ${USERS.maintainer}` }, 403, 'ADMIN_FORBIDDEN'],
    ['job token', { 'job-token': TOKENS.app }, 403, 'ADMIN_JOB_TOKEN_REFUSED'],
    ['nobody', {}, 401, 'ADMIN_UNAUTHENTICATED']
  ]
  for (const [name, headers, status, code] of cases) {
    const put = await send(g.url, 'PUT', ACME, { ...headers, ...json }, value)
    assert.equal(put.status, status, `${name}: ${put.text}`)
    assert.equal(put.json().code, code, name)
    assert.equal((await send(g.url, 'GET', ACME, headers)).status, status, `${name} reads`)
  }
  assert.match((await send(g.url, 'PUT', ACME, { 'private-token': USERS.owner, ...json }, value)).json().message, /GATE_ADMIN_TOKEN/)
  assert.equal(await g.store.getNamespace('acme'), null, 'nothing was written')
  assert.equal((await g.store.readNamespaceAudit('acme', { offset: 0, limit: 5 })).total, 0)
})

test('namespace policies: bad bodies are 400 by field; other methods 405; nothing is forwarded', async t => {
  const g = await adminGate(t)
  const bad: Array<[unknown, string]> = [
    [{ job_token_policies_enabled: 'maybe' }, 'job_token_policies_enabled'],
    [{}, 'job_token_policies_enabled'],
    [{ job_token_policies_enabled: true, enforce: true }, 'enforce']
  ]
  for (const [given, field] of bad) {
    const res = await send(g.url, 'PUT', ACME, { ...op, ...json }, body(given))
    assert.equal(res.status, 400, res.text)
    assert.ok(res.text.includes(field), `${JSON.stringify(given)} names ${field}`)
  }
  const patch = await send(g.url, 'PATCH', ACME, { ...op, ...json }, body({ job_token_policies_enabled: false }))
  assert.equal(patch.status, 405)
  assert.equal(patch.headers.allow, 'OPTIONS, GET, HEAD, PUT')
  assert.equal((await send(g.url, 'GET', `${ACME}/other`, op)).status, 404)
  assert.equal((await send(g.url, 'GET', '/api/v4/groups/acme/job_token_policies.json', op)).status, 200, 'the format suffix, as Grape routes it')
  assert.equal(await g.store.getNamespace('acme'), null)
  assert.equal(g.seen.length, 0)
})

const redis = await startRedis({ after })

test('namespace policies: a PUT on one replica is enforced by another sharing Redis, through the invalidation', async t => {
  // Entries are trusted for a minute: within eventually()'s 10 s only the invalidation explains a change.
  const env = { GATE_REDIS_URL: redis.url, GATE_GRANT_CACHE_TTL_MS: '60000' }
  const a = await adminGate(t, env)
  const b = await adminGate(t, env)
  const job = { 'job-token': TOKENS.app }
  // Both replicas deny, and cache acme/lib's grants and "acme has no setting".
  for (const gate of [a, b]) assert.equal((await send(gate.url, 'POST', DEPLOY, job)).json().code, 'MISSING_POLICIES')
  const off = await send(a.url, 'PUT', ACME, { ...op, ...json }, body({ job_token_policies_enabled: false }))
  assert.equal(off.status, 200, off.text)
  assert.equal((await send(a.url, 'POST', DEPLOY, job)).status, 200, 'the writing replica at once (read-your-writes)')
  await eventually(async () => (await send(b.url, 'POST', DEPLOY, job)).status === 200, { message: 'replica B allowing after the invalidation' })
  assert.equal(b.logs.filter(l => l.msg === 'decision').at(-1)?.reason, 'FINE_GRAINED_POLICIES_OFF')
  await send(a.url, 'PUT', ACME, { ...op, ...json }, body({ job_token_policies_enabled: null }))
  await eventually(async () => (await send(b.url, 'POST', DEPLOY, job)).json().code === 'MISSING_POLICIES', { message: 'removed: replica B enforcing again' })
  const audit = await send(b.url, 'GET', `${ACME}/audit_events`, op)
  assert.equal(audit.headers['x-total'], '2', 'the audit trail is in Redis, readable on the other replica')
})
