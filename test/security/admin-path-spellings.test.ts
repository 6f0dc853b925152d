// Every form of the configuration API's paths that GitLab would route to its job_token_scope
// endpoints (or that names the gate's job_token_permissions) is answered by the gate through a
// real socket, and nothing reaches the upstream: Grape's `.json` format suffix, duplicate and
// trailing slashes, percent-encoded characters, encoded project paths, the relative URL root,
// HEAD and OPTIONS; forms no endpoint matches are the gate's 404, never forwarded.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS, type TestGate } from '../helpers/gate.ts'
import { send, type RawResponse } from '../helpers/http.ts'
import { ADMIN, USERS, adminGate } from '../helpers/admin-gate.ts'

const op = { 'private-token': ADMIN }
const json = { 'content-type': 'application/json' }
const body = (value: unknown): string => JSON.stringify(value)

function answeredByGate (g: TestGate, res: RawResponse, status: number, what: string): void {
  assert.equal(res.status, status, `${what}: ${res.text}`)
  assert.equal(res.headers['x-upstream'], undefined, `${what}: not the upstream's answer`)
  assert.deepEqual(g.seen, [], `${what}: nothing was forwarded`)
}

const readVariants: Array<[string, string]> = [
  ['the .json format', '/api/v4/projects/200/job_token_scope.json'],
  ['an encoded underscore', '/api/v4/projects/200/job%5Ftoken%5Fscope'],
  ['an encoded format dot', '/api/v4/projects/200/job_token_scope%2Ejson'],
  ['encoded letters', '/api/v4/projects/200/%6Aob_token_%73cope'],
  ['duplicate and trailing slashes', '//api//v4//projects//200//job_token_scope//'],
  ['an encoded full path', '/api/v4/projects/acme%2Flib/job_token_scope'],
  ['an encoded full path in lower-case hex', '/api/v4/projects/acme%2flib/job_token_scope.json'],
  ['an encoded api prefix', '/%61pi/v4/projects/200/job_token_scope']
]

for (const [name, path] of readVariants) {
  test(`admin paths: GET job_token_scope with ${name} is the gate's`, async t => {
    const g = await adminGate(t)
    const res = await send(g.url, 'GET', path, op)
    answeredByGate(g, res, 200, path)
    assert.deepEqual(res.json(), { inbound_enabled: true, outbound_enabled: false })
  })
}

test('admin paths: PATCH job_token_scope.json changes the gate\'s store; GitLab never sees it', async t => {
  const g = await adminGate(t, { GATE_ENFORCE_INBOUND_SCOPE: 'false' })
  const res = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_scope.json', { ...op, ...json }, body({ enabled: false }))
  answeredByGate(g, res, 204, 'PATCH .json')
  assert.equal((await g.store.get(200))?.inboundEnabled, false)
  const encoded = await send(g.url, 'PATCH', '/api/v4/projects/acme%2Flib/job%5Ftoken_scope.json/', { ...op, ...json }, body({ enabled: true }))
  answeredByGate(g, encoded, 204, 'PATCH encoded')
  assert.equal((await g.store.get(200))?.inboundEnabled, true)
  assert.equal((await g.store.readAudit(200, { offset: 0, limit: 10 })).total, 2, 'both audited')
})

test('admin paths: allowlist entries through .json, encoded and slashed forms', async t => {
  const g = await adminGate(t)
  const add = await send(g.url, 'POST', '/api/v4/projects/200/job_token_scope/allowlist.json', { ...op, ...json }, body({ target_project_id: 300 }))
  answeredByGate(g, add, 201, 'POST allowlist.json')
  const addGroup = await send(g.url, 'POST', '//api/v4/projects/acme%2Flib/job_token_scope/groups%5Fallowlist/', { ...op, ...json }, body({ target_group_id: 20 }))
  answeredByGate(g, addGroup, 201, 'POST groups_allowlist encoded')
  const change = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_scope/allowlist/300.json', { ...op, ...json }, body({ default_permissions: false, job_token_policies: ['read_jobs'] }))
  answeredByGate(g, change, 200, 'PATCH allowlist/300.json')
  assert.equal(change.json().target_project_id, 300, 'the .json after an integer id is the format')
  let stored = await g.store.get(200)
  assert.deepEqual(stored?.entries.map(e => `${e.targetType}:${e.targetId}`), ['project:100', 'group:10', 'project:300', 'group:20'])
  assert.deepEqual(stored?.entries.find(e => e.targetId === 300)?.jobTokenPolicies, ['read_jobs'])
  const remove = await send(g.url, 'DELETE', '/api/v4/projects/200/job_token_scope/allowlist/%33%30%30.json', op)
  answeredByGate(g, remove, 204, 'DELETE encoded digits')
  const removeGroup = await send(g.url, 'DELETE', '/api/v4/projects/200//job_token_scope/groups_allowlist/10.json/', op)
  answeredByGate(g, removeGroup, 204, 'DELETE groups_allowlist/10.json')
  stored = await g.store.get(200)
  assert.deepEqual(stored?.entries.map(e => `${e.targetType}:${e.targetId}`), ['project:100', 'group:20'])
})

test('admin paths: job_token_permissions and its audit events with the .json format', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions.json', { ...op, ...json }, body({ package_registry: { maven: { write: 'maintainer' } } }))
  answeredByGate(g, patch, 200, 'PATCH permissions.json')
  assert.deepEqual((await g.store.get(200))?.packageRules, { maven: { write: 'maintainer' } })
  const audit = await send(g.url, 'GET', '/api/v4/projects/200/job_token_permissions/audit_events.json', op)
  answeredByGate(g, audit, 200, 'GET audit_events.json')
  assert.equal(audit.json().length, 1)
})

test('admin paths: HEAD is answered as GET without a body; OPTIONS lists the methods as Grape does', async t => {
  const g = await adminGate(t)
  const head = await send(g.url, 'HEAD', '/api/v4/projects/200/job_token_scope.json', op)
  answeredByGate(g, head, 200, 'HEAD')
  assert.equal(head.text, '')
  const headList = await send(g.url, 'HEAD', '/api/v4/projects/200/job_token_scope/allowlist', op)
  answeredByGate(g, headList, 200, 'HEAD allowlist')
  assert.equal(headList.headers['x-total'], '2')
  const options = await send(g.url, 'OPTIONS', '/api/v4/projects/200/job_token_scope.json')
  answeredByGate(g, options, 204, 'OPTIONS')
  assert.equal(options.headers.allow, 'OPTIONS, GET, HEAD, PATCH')
  const optionsEntry = await send(g.url, 'OPTIONS', '/api/v4/projects/200/job_token_scope/allowlist/5')
  assert.equal(optionsEntry.headers.allow, 'OPTIONS, PATCH, DELETE')
  const headNoCredential = await send(g.url, 'HEAD', '/api/v4/projects/200/job_token_scope')
  answeredByGate(g, headNoCredential, 401, 'HEAD without a credential')
})

test('admin paths: other methods are 405 with Allow; forms no endpoint matches are the gate\'s 404', async t => {
  const g = await adminGate(t)
  const put = await send(g.url, 'PUT', '/api/v4/projects/200/job_token_scope.json', { ...op, ...json }, body({ enabled: false }))
  answeredByGate(g, put, 405, 'PUT')
  assert.equal(put.headers.allow, 'OPTIONS, GET, HEAD, PATCH')
  const post = await send(g.url, 'POST', '/api/v4/projects/200/job_token_scope/allowlist/300', { ...op, ...json }, body({}))
  answeredByGate(g, post, 405, 'POST on an entry')
  // Any extension is a format to GitLab's API (`.xml` as `.json`): the endpoint, whose DELETE is no method.
  const xml = await send(g.url, 'DELETE', '/api/v4/projects/200/job_token_scope.xml', op)
  answeredByGate(g, xml, 405, 'DELETE with the .xml format')
  assert.equal(xml.headers.allow, 'OPTIONS, GET, HEAD, PATCH')
  // `5.5` is entry 5 with the format "5", as Grape reads it: not in the allowlist here.
  const dotted = await send(g.url, 'DELETE', '/api/v4/projects/200/job_token_scope/allowlist/5.5', op)
  answeredByGate(g, dotted, 404, 'an entry id with a format')
  assert.match(dotted.json().message, /project 5 is not in the job token scope allowlist/)
  for (const path of [
    '/api/v4/projects/200/job_token_scope%2Fallowlist',
    '/api/v4/projects/200/job_token_scope/allowlist/5/extra',
    '/api/v4/projects/200/job_token_permissions.json/audit_events'
  ]) {
    const res = await send(g.url, 'DELETE', path, op)
    answeredByGate(g, res, 404, path)
    assert.equal(res.json().code, 'ADMIN_NOT_FOUND')
  }
  assert.equal((await g.store.get(200))?.entries.length, 2, 'nothing changed')
})

test('admin paths: job tokens and anonymous callers are refused on every form, never forwarded', async t => {
  const g = await adminGate(t)
  const job = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_scope.json', { 'job-token': TOKENS.lib, ...json }, body({ enabled: false }))
  answeredByGate(g, job, 403, 'job token')
  assert.equal(job.json().code, 'ADMIN_JOB_TOKEN_REFUSED')
  const dev = await send(g.url, 'DELETE', '/api/v4/projects/200/job_token_scope/allowlist/100.json', { 'private-token': USERS.developer })
  answeredByGate(g, dev, 403, 'Developer')
  const none = await send(g.url, 'POST', '/api/v4/projects/200/job%5Ftoken%5Fscope/allowlist', json, body({ target_project_id: 300 }))
  answeredByGate(g, none, 401, 'anonymous')
  assert.equal((await g.store.get(200))?.entries.length, 2)
  assert.equal((await g.store.get(200))?.inboundEnabled, true)
})

test('admin paths: under a relative URL root, the rooted forms are the gate\'s', async t => {
  const g = await adminGate(t, { GATE_RELATIVE_URL_ROOT: '/gitlab', GATE_ENFORCE_INBOUND_SCOPE: 'false' })
  const patch = await send(g.url, 'PATCH', '/gitlab/api/v4/projects/200/job_token_scope.json', { ...op, ...json }, body({ enabled: false }))
  answeredByGate(g, patch, 204, 'rooted PATCH .json')
  assert.equal((await g.store.get(200))?.inboundEnabled, false)
  const slashed = await send(g.url, 'GET', '//gitlab//api/v4/projects/acme%2Flib/job%5Ftoken_scope/', op)
  answeredByGate(g, slashed, 200, 'rooted, slashed, encoded')
  assert.deepEqual(slashed.json(), { inbound_enabled: false, outbound_enabled: false })
  const options = await send(g.url, 'OPTIONS', '/%67itlab/api/v4/projects/200/job_token_permissions')
  answeredByGate(g, options, 204, 'rooted OPTIONS with an encoded root')
})

test('admin paths: neighbouring GitLab paths still go through the job-token stages', async t => {
  const g = await adminGate(t)
  const paths = ['/api/v4/projects/200/job_token_scopes', '/api/v4/projects/200/job_token_scope_x', '/api/v4/projects/200%2Fjob_token_scope']
  for (const path of paths) {
    const res = await send(g.url, 'GET', path)
    assert.equal(res.status, 200, path)
    assert.equal(res.headers['x-upstream'], 'fake', `${path} is GitLab's`)
  }
  assert.deepEqual(g.seen.map(s => s.url), paths)
})
