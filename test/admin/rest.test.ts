// The configuration API over REST through a real gate: who may call it, each endpoint's shapes
// and status codes, every validation rule, PATCH merge semantics, audit events with pagination,
// and that the gate never forwards these endpoints to GitLab.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { rawRequest, send, sendChunked } from '../helpers/http.ts'

import { ADMIN, USERS, adminGate } from '../helpers/admin-gate.ts'

const op = { 'private-token': ADMIN }
const json = { 'content-type': 'application/json' }
const body = (value: unknown): string => JSON.stringify(value)

test('admin: who may call — none 401, job token 403, Developer 403, Maintainer and group Owner pass, operator passes, bad token 401', async t => {
  const g = await adminGate(t)
  const path = '/api/v4/projects/200/job_token_permissions'
  const none = await send(g.url, 'GET', path)
  assert.equal(none.status, 401)
  assert.equal(none.json().code, 'ADMIN_UNAUTHENTICATED')
  const job = await send(g.url, 'GET', path, { 'job-token': TOKENS.lib })
  assert.equal(job.status, 403)
  assert.equal(job.json().code, 'ADMIN_JOB_TOKEN_REFUSED')
  const jobAsPrivate = await send(g.url, 'PATCH', path, { 'private-token': TOKENS.app, ...json }, body({ package_registry: { maven: { write: 'job_token_and_maintainer' } } }))
  assert.equal(jobAsPrivate.status, 403, 'a job token in PRIVATE-TOKEN is still a job token')
  const dev = await send(g.url, 'GET', path, { 'private-token': USERS.developer })
  assert.equal(dev.status, 403)
  assert.equal(dev.json().code, 'ADMIN_FORBIDDEN')
  const maint = await send(g.url, 'GET', path, { 'private-token': USERS.maintainer })
  assert.equal(maint.status, 200)
  const owner = await send(g.url, 'GET', path, { authorization: `Bearer ${USERS.owner}` })
  assert.equal(owner.status, 200, 'group_access Owner counts, as a Bearer token')
  const operator = await send(g.url, 'GET', path, { authorization: `Bearer ${ADMIN}` })
  assert.equal(operator.status, 200)
  const unknown = await send(g.url, 'GET', path, { 'private-token': 'glpat-nobody' })
  assert.equal(unknown.status, 401)
  const otherProject = await send(g.url, 'GET', '/api/v4/projects/300/job_token_permissions', { 'private-token': USERS.maintainer })
  assert.equal(otherProject.status, 404, 'a project the user cannot see is 404, as GitLab')
  assert.equal(g.seen.length, 0, 'nothing was forwarded to GitLab')
})

test('admin: the caller\'s headers as Puma hands them to Rails: `Private_Token` and `Job_Token` count; repeated lines are ambiguous', async t => {
  const g = await adminGate(t)
  const port = Number(new URL(g.url).port)
  const get = async (...headers: string[]): Promise<{ status: number, code: unknown }> => {
    const answer = await rawRequest(port, ['GET /api/v4/projects/200/job_token_permissions HTTP/1.1', ...headers])
    return { status: answer.status, code: (JSON.parse(answer.body) as { code?: unknown }).code }
  }
  assert.equal((await get(`Private_Token: ${USERS.maintainer}`)).status, 200)
  assert.deepEqual(await get(`Job_Token: ${TOKENS.lib}`), { status: 403, code: 'ADMIN_JOB_TOKEN_REFUSED' })
  assert.deepEqual(await get(`PRIVATE-TOKEN: ${USERS.maintainer}`, `Private-Token: ${USERS.developer}`), { status: 401, code: 'CREDENTIAL_AMBIGUOUS' })
  assert.deepEqual(await get(`Authorization: Bearer ${USERS.maintainer}`, `Authorization: Bearer ${USERS.developer}`), { status: 401, code: 'CREDENTIAL_AMBIGUOUS' })
})

test('admin: the Maintainer check is cached by token hash', async t => {
  const g = await adminGate(t)
  g.gitlab.resetCalls()
  for (let i = 0; i < 3; i++) assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/job_token_scope', { 'private-token': USERS.maintainer })).status, 200)
  assert.equal(g.gitlab.calls.project, 2, 'one project lookup and one user lookup, then the cache')
})

test('admin: GET job_token_permissions lists every catalog format with GitLab defaults; PATCH merges', async t => {
  const g = await adminGate(t)
  const path = '/api/v4/projects/200/job_token_permissions'
  const initial = (await send(g.url, 'GET', path, op)).json()
  assert.deepEqual(Object.keys(initial.package_registry), ['cargo', 'composer', 'conan', 'debian', 'generic', 'go', 'helm', 'maven', 'ml_model', 'npm', 'nuget', 'pypi', 'rpm', 'rubygems', 'terraform_module'])
  assert.deepEqual(initial.package_registry.maven, { read: true, write: 'job_token_and_maintainer', delete: 'job_token_and_maintainer', configured: false })

  const first = await send(g.url, 'PATCH', path, { ...op, ...json }, body({ package_registry: { maven: { read: true, write: 'maintainer' } } }))
  assert.equal(first.status, 200, first.text)
  assert.deepEqual(first.json().package_registry.maven, { read: true, write: 'maintainer', delete: 'maintainer', configured: true }, 'delete follows write when unset')
  const second = await send(g.url, 'PATCH', path, { ...op, ...json }, body({ package_registry: { npm: { read: false, write: 'maintainer' } } }))
  assert.equal(second.status, 200, second.text)
  const merged = second.json().package_registry
  assert.equal(merged.maven.write, 'maintainer', 'maven kept: PATCH merges')
  assert.deepEqual(merged.npm, { read: false, write: 'maintainer', delete: 'maintainer', configured: true })
  const third = await send(g.url, 'PATCH', path, { ...op, ...json }, body({ package_registry: { maven: { delete: 'maintainer', write: null }, npm: null } }))
  assert.equal(third.status, 200, third.text)
  assert.deepEqual(third.json().package_registry.maven, { read: true, write: 'job_token_and_maintainer', delete: 'maintainer', configured: true })
  assert.equal(third.json().package_registry.npm.configured, false, 'null removes a format')
  const stored = await g.store.get(200)
  assert.deepEqual(stored?.packageRules, { maven: { read: true, delete: 'maintainer' } })
  assert.equal(stored?.entries.length, 2, 'the allowlist is untouched')
})

const validationCases: Array<[string, unknown, Array<{ field: string, message: RegExp }>]> = [
  ['unknown format', { package_registry: { swift: { read: true } } }, [{ field: 'package_registry.swift', message: /not a known package format/ }]],
  ['unknown action', { package_registry: { maven: { push: 'maintainer' } } }, [{ field: 'package_registry.maven.push', message: /not a known action/ }]],
  ['unknown level', { package_registry: { maven: { write: 'developer' } } }, [{ field: 'package_registry.maven.write', message: /must be one of/ }]],
  ['read not boolean', { package_registry: { maven: { read: 'yes' } } }, [{ field: 'package_registry.maven.read', message: /true or false/ }]],
  ['job tokens write while read is false', { package_registry: { maven: { read: false, write: 'job_token_and_maintainer', delete: 'maintainer' } } }, [{ field: 'package_registry.maven.write', message: /may not read/ }]],
  ['job tokens delete while read is false', { package_registry: { pypi: { read: false, write: 'maintainer', delete: 'job_token_and_maintainer' } } }, [
    { field: 'package_registry.pypi.delete', message: /may not read/ }, { field: 'package_registry.pypi.delete', message: /may not write/ }]],
  ['job tokens delete but may not write', { package_registry: { npm: { write: 'maintainer', delete: 'job_token_and_maintainer' } } }, [{ field: 'package_registry.npm.delete', message: /may not write/ }]],
  ['unknown top-level field', { package_registry: {}, container_registry: {} }, [{ field: 'container_registry', message: /not a known field/ }]],
  ['several problems at once', { package_registry: { swift: {}, maven: { write: 'x', read: 1 } } }, [
    { field: 'package_registry.swift', message: /not a known package format/ }, { field: 'package_registry.maven.write', message: /must be one of/ }, { field: 'package_registry.maven.read', message: /true or false/ }]]
]

for (const [name, payload, expected] of validationCases) {
  test(`admin: PATCH job_token_permissions refuses ${name}, lists every problem and changes nothing`, async t => {
    const g = await adminGate(t)
    const before = await g.store.version(200)
    const res = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...op, ...json }, body(payload))
    assert.equal(res.status, 400, res.text)
    const answer = res.json()
    assert.equal(answer.code, 'ADMIN_VALIDATION_FAILED')
    assert.equal(answer.errors.length, expected.length, res.text)
    for (const e of expected) assert.ok(answer.errors.some((got: { field: string, message: string }) => got.field === e.field && e.message.test(got.message)), `${e.field} ${String(e.message)} in ${res.text}`)
    assert.equal(await g.store.version(200), before, 'nothing written')
    assert.equal((await g.store.readAudit(200, { offset: 0, limit: 10 })).total, 0, 'nothing audited')
  })
}

test('admin: a body that is not JSON is 400', async t => {
  const g = await adminGate(t)
  const res = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...op, ...json }, '{"package_registry":')
  assert.equal(res.status, 400)
  assert.equal(res.json().code, 'ADMIN_BAD_REQUEST')
})

test('admin: job_token_scope GET and PATCH (204), answered by the gate, not GitLab', async t => {
  const g = await adminGate(t, { GATE_ENFORCE_INBOUND_SCOPE: 'false' })
  const path = '/api/v4/projects/200/job_token_scope'
  assert.deepEqual((await send(g.url, 'GET', path, op)).json(), { inbound_enabled: true, outbound_enabled: false })
  const off = await send(g.url, 'PATCH', path, { ...op, ...json }, body({ enabled: false }))
  assert.equal(off.status, 204)
  assert.equal(off.text, '')
  assert.deepEqual((await send(g.url, 'GET', path, op)).json(), { inbound_enabled: false, outbound_enabled: false })
  const bad = await send(g.url, 'PATCH', path, { ...op, 'content-type': 'application/x-www-form-urlencoded' }, 'enabled=maybe')
  assert.equal(bad.status, 400)
  assert.deepEqual(bad.json().errors, [{ field: 'enabled', message: 'must be true or false' }])
  assert.equal(g.seen.length, 0)
})

test('admin: project allowlist — list with policies and self, add, change, delete', async t => {
  const g = await adminGate(t)
  const base = '/api/v4/projects/200/job_token_scope/allowlist'
  const list = await send(g.url, 'GET', base, op)
  assert.equal(list.status, 200)
  assert.equal(list.headers['x-total'], '2')
  const items = list.json()
  assert.equal(items[0].id, 200)
  assert.equal(items[0].self, true)
  assert.deepEqual({ id: items[1].id, default_permissions: items[1].default_permissions, job_token_policies: items[1].job_token_policies }, { id: 100, default_permissions: false, job_token_policies: ['read_packages'] })

  const add = await send(g.url, 'POST', base, { ...op, ...json }, body({ target_project_id: 300, default_permissions: false, job_token_policies: ['read_releases', 'admin_deployments'] }))
  assert.equal(add.status, 201, add.text)
  assert.deepEqual(add.json(), { source_project_id: 200, target_project_id: 300, default_permissions: false, job_token_policies: ['read_releases', 'admin_deployments'] })
  const again = await send(g.url, 'POST', base, { ...op, ...json }, body({ target_project_id: 300 }))
  assert.equal(again.status, 400)
  assert.equal(again.json().code, 'ADMIN_ENTRY_EXISTS')

  const change = await send(g.url, 'PATCH', `${base}/300`, { ...op, ...json }, body({ job_token_policies: ['read_jobs'] }))
  assert.equal(change.status, 200, change.text)
  assert.deepEqual(change.json().job_token_policies, ['read_jobs'])
  assert.equal(change.json().default_permissions, false, 'default_permissions kept')
  const toDefault = await send(g.url, 'PATCH', `${base}/300`, { ...op, ...json }, body({ default_permissions: true }))
  assert.deepEqual(toDefault.json().job_token_policies, [], 'back to default permissions drops the policies')

  const form = await send(g.url, 'POST', base, { ...op, 'content-type': 'application/x-www-form-urlencoded' }, 'target_project_id=400')
  assert.equal(form.status, 201, form.text)
  assert.equal(form.json().default_permissions, true)

  assert.equal((await send(g.url, 'DELETE', `${base}/300`, op)).status, 204)
  const gone = await send(g.url, 'DELETE', `${base}/300`, op)
  assert.equal(gone.status, 404)
  const stored = await g.store.get(200)
  assert.deepEqual(stored?.entries.map(e => `${e.targetType}:${e.targetId}`), ['project:100', 'group:10', 'project:400'])
  assert.equal((await send(g.url, 'PUT', base, op)).status, 405)
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/job_token_scope/nothing', op)).status, 404)
  assert.equal(g.seen.length, 0)
})

test('admin: groups allowlist — add, list, change, delete', async t => {
  const g = await adminGate(t)
  const base = '/api/v4/projects/200/job_token_scope/groups_allowlist'
  const add = await send(g.url, 'POST', base, { 'private-token': USERS.maintainer, ...json }, body({ target_group_id: 20, default_permissions: false, job_token_policies: ['read_packages'] }))
  assert.equal(add.status, 201, add.text)
  assert.deepEqual(add.json(), { source_project_id: 200, target_group_id: 20, default_permissions: false, job_token_policies: ['read_packages'] })
  const list = (await send(g.url, 'GET', base, op)).json()
  assert.deepEqual(list.map((e: { id: number }) => e.id), [10, 20])
  assert.deepEqual(list[1].added_by, { id: 41, username: 'mia' }, 'added_by is the Maintainer')
  const change = await send(g.url, 'PATCH', `${base}/20`, { ...op, ...json }, body({ job_token_policies: ['admin_packages'] }))
  assert.deepEqual(change.json().job_token_policies, ['admin_packages'])
  assert.equal((await send(g.url, 'DELETE', `${base}/20`, op)).status, 204)
  assert.deepEqual((await g.store.get(200))?.entries.map(e => e.targetId), [100, 10])
})

const entryValidation: Array<[string, string, unknown, Array<[string, RegExp]>]> = [
  ['the project itself', 'allowlist', { target_project_id: 200 }, [['target_project_id', /names the project itself/]]],
  ['a malformed id', 'allowlist', { target_project_id: 'abc' }, [['target_project_id', /positive integer/]]],
  ['a negative group id', 'groups_allowlist', { target_group_id: -4 }, [['target_group_id', /positive integer/]]],
  ['a missing id', 'allowlist', {}, [['target_project_id', /is missing/]]],
  ['policies while default_permissions is true', 'allowlist', { target_project_id: 301, job_token_policies: ['read_packages'] }, [['job_token_policies', /default_permissions is true/]]],
  ['an unknown policy', 'allowlist', { target_project_id: 301, default_permissions: false, job_token_policies: ['read_everything'] }, [['job_token_policies[0]', /not a known job token policy/]]],
  ['a deprecated policy', 'allowlist', { target_project_id: 301, default_permissions: false, job_token_policies: ['read_containers'] }, [['job_token_policies[0]', /deprecated/]]],
  ['an upper-case policy', 'allowlist', { target_project_id: 301, default_permissions: false, job_token_policies: ['READ_JOBS'] }, [['job_token_policies[0]', /lower-case/]]],
  ['default_permissions not boolean', 'allowlist', { target_project_id: 301, default_permissions: 'sure' }, [['default_permissions', /true or false/]]],
  ['everything at once', 'allowlist', { target_project_id: 200, default_permissions: true, job_token_policies: ['nope'] }, [
    ['target_project_id', /itself/], ['job_token_policies[0]', /not a known/], ['job_token_policies', /default_permissions is true/]]]
]

for (const [name, list, payload, expected] of entryValidation) {
  test(`admin: POST ${list} refuses ${name}, naming each field, and changes nothing`, async t => {
    const g = await adminGate(t)
    const before = await g.store.version(200)
    const res = await send(g.url, 'POST', `/api/v4/projects/200/job_token_scope/${list}`, { ...op, ...json }, body(payload))
    assert.equal(res.status, 400, res.text)
    const errs = res.json().errors as Array<{ field: string, message: string }>
    assert.equal(errs.length, expected.length, res.text)
    for (const [field, message] of expected) assert.ok(errs.some(e => e.field === field && message.test(e.message)), `${field} in ${res.text}`)
    assert.equal(await g.store.version(200), before)
  })
}

test('admin: more than 200 project entries is refused', async t => {
  const g = await adminGate(t)
  const base = '/api/v4/projects/300/job_token_scope/allowlist'
  for (let i = 0; i < 200; i++) {
    const res = await send(g.url, 'POST', base, { ...op, ...json }, body({ target_project_id: 1000 + i }))
    assert.equal(res.status, 201, res.text)
  }
  const over = await send(g.url, 'POST', base, { ...op, ...json }, body({ target_project_id: 5000 }))
  assert.equal(over.status, 400)
  assert.deepEqual(over.json().errors, [{ field: 'allowlist', message: 'already has 200 project entries; the limit is 200' }])
  const page = await send(g.url, 'GET', `${base}?page=3&per_page=100`, op)
  assert.equal(page.headers['x-total'], '201', 'the 200 entries and the project itself')
  assert.equal(page.headers['x-total-pages'], '3')
  assert.equal(page.json().length, 1)
})

test('admin: a project not in the store yet is created from GitLab\'s answer, by full path', async t => {
  const g = await adminGate(t)
  assert.equal(await g.store.get(100), null)
  const res = await send(g.url, 'PATCH', '/api/v4/projects/acme%2Fplatform%2Fapp/job_token_permissions', { ...op, ...json }, body({ package_registry: { generic: { write: 'maintainer' } } }))
  assert.equal(res.status, 200, res.text)
  const stored = await g.store.get(100)
  assert.equal(stored?.projectPath, 'acme/platform/app')
  assert.deepEqual(stored?.packageRules, { generic: { write: 'maintainer' } })
  assert.equal(stored?.inboundEnabled, true)
  const missing = await send(g.url, 'GET', '/api/v4/projects/999/job_token_permissions', op)
  assert.equal(missing.status, 404)
})

test('admin: audit events record actor, project, before, after, time and request id; paged newest first', async t => {
  const g = await adminGate(t)
  const path = '/api/v4/projects/200/job_token_permissions'
  await send(g.url, 'PATCH', path, { 'private-token': USERS.maintainer, ...json, 'x-request-id': 'req-one' }, body({ package_registry: { maven: { write: 'maintainer' } } }))
  await send(g.url, 'PATCH', path, { ...op, ...json }, body({ package_registry: { npm: { read: true } } }))
  await send(g.url, 'POST', '/api/v4/projects/200/job_token_scope/allowlist', { ...op, ...json }, body({ target_project_id: 300 }))
  const first = await send(g.url, 'GET', `${path}/audit_events?per_page=2`, { 'private-token': USERS.maintainer })
  assert.equal(first.status, 200)
  assert.equal(first.headers['x-total'], '3')
  assert.equal(first.headers['x-total-pages'], '2')
  assert.equal(first.headers['x-next-page'], '2')
  const [newest, middle] = first.json()
  assert.equal(newest.action, 'add_project_to_allowlist')
  assert.deepEqual(newest.actor, { type: 'operator' })
  assert.equal(newest.before, null)
  assert.equal(newest.after.id, 300)
  assert.deepEqual(middle.before, { package_registry: { maven: { write: 'maintainer' } } })
  assert.deepEqual(middle.after, { package_registry: { maven: { write: 'maintainer' }, npm: { read: true } } })
  const second = (await send(g.url, 'GET', `${path}/audit_events?per_page=2&page=2`, op)).json()
  assert.equal(second.length, 1)
  assert.deepEqual(second[0].actor, { type: 'user', id: 41, username: 'mia' })
  assert.equal(second[0].project_id, 200)
  assert.equal(second[0].request_id, 'req-one', 'the trusted caller\'s request id')
  assert.ok(Date.now() - Date.parse(second[0].created_at) < 60_000)
  const logged = g.logs.filter(l => l.audit === true)
  assert.equal(logged.length, 3)
  assert.equal(logged[0]!.request_id, 'req-one')
  assert.equal(JSON.stringify(g.logs).includes(USERS.maintainer), false, 'tokens never reach the logs')
  assert.equal((await send(g.url, 'GET', `${path}/audit_events?page=0`, op)).status, 400)
  assert.equal((await send(g.url, 'GET', `${path}/audit_events`, { 'private-token': USERS.developer })).status, 403)
})

test('admin: other project routes and non-admin paths still go through the job-token stages', async t => {
  const g = await adminGate(t)
  const res = await send(g.url, 'GET', '/api/v4/projects/200/variables', { 'private-token': USERS.maintainer })
  assert.equal(res.status, 200)
  assert.equal(g.seen.length, 1)
  assert.equal(g.seen[0]!.url, '/api/v4/projects/200/variables')
})

test('admin: concurrent PATCHes of different formats all land (conditional writes, no lost update)', async t => {
  const g = await adminGate(t)
  const formats = ['composer', 'conan', 'generic', 'go', 'maven', 'npm', 'pypi']
  const answers = await Promise.all(formats.map(format =>
    send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...op, ...json }, body({ package_registry: { [format]: { write: 'maintainer' } } }))))
  assert.deepEqual(answers.map(a => a.status), formats.map(() => 200))
  const stored = await g.store.get(200)
  assert.deepEqual(Object.keys(stored?.packageRules ?? {}).sort(), formats)
  assert.equal((await g.store.readAudit(200, { offset: 0, limit: 100 })).total, formats.length)
})

test('admin: canonical forms of the paths are the gate\'s too; two different tokens are ambiguous; GitLab down is 502', async t => {
  const g = await adminGate(t)
  const encoded = await send(g.url, 'GET', '//api/v4/projects/200/%6Aob_token_scope/', op)
  assert.equal(encoded.status, 200, 'canonicalized before the admin check')
  assert.deepEqual(encoded.json(), { inbound_enabled: true, outbound_enabled: false })
  const twoTokens = await send(g.url, 'GET', '/api/v4/projects/200/job_token_scope', { 'private-token': USERS.maintainer, authorization: `Bearer ${ADMIN}` })
  assert.equal(twoTokens.status, 401)
  assert.equal(twoTokens.json().code, 'CREDENTIAL_AMBIGUOUS')
  g.gitlab.failWith.project = 500
  const down = await send(g.url, 'GET', '/api/v4/projects/200/job_token_scope', { 'private-token': USERS.developer })
  assert.equal(down.status, 502)
  assert.equal(down.json().code, 'ADMIN_UPSTREAM_UNAVAILABLE')
  assert.equal(g.seen.length, 0)
})

test('admin: form bodies take job_token_policies[] as GitLab\'s clients send them', async t => {
  const g = await adminGate(t)
  const res = await send(g.url, 'POST', '/api/v4/projects/200/job_token_scope/groups_allowlist', { ...op, 'content-type': 'application/x-www-form-urlencoded' },
    'target_group_id=20&default_permissions=false&job_token_policies[]=read_packages&job_token_policies[]=admin_releases')
  assert.equal(res.status, 201, res.text)
  assert.deepEqual(res.json(), { source_project_id: 200, target_group_id: 20, default_permissions: false, job_token_policies: ['read_packages', 'admin_releases'] })
  const stored = (await g.store.get(200))?.entries.find(e => e.targetType === 'group' && e.targetId === 20)
  assert.deepEqual(stored?.jobTokenPolicies, ['read_packages', 'admin_releases'])
})

test('admin: a body over 1 MiB is refused (413 ADMIN_BODY_TOO_LARGE), declared or chunked, and nothing is written', async t => {
  const g = await adminGate(t)
  const path = '/api/v4/projects/200/job_token_permissions'
  const large = body({ package_registry: { maven: { write: 'maintainer' } }, pad: 'x'.repeat(1 << 20) })
  const declared = await send(g.url, 'PATCH', path, { ...op, ...json }, large)
  assert.equal(declared.status, 413, declared.text)
  assert.equal(declared.json().code, 'ADMIN_BODY_TOO_LARGE')
  assert.equal((await send(g.url, 'GET', path, op)).json().package_registry.maven.configured, false, 'nothing written')
  const allowlist = async (): Promise<string> => (await send(g.url, 'GET', '/api/v4/projects/200/job_token_scope/allowlist', op)).text
  const before = await allowlist()
  const entry = body({ target_project_id: 100, pad: 'x'.repeat(1 << 20) })
  const chunked = await sendChunked(g.url, '/api/v4/projects/200/job_token_scope/allowlist', { ...op, ...json }, [entry.slice(0, 1000), entry.slice(1000)])
  assert.equal(chunked.status, 413, chunked.body)
  assert.equal(JSON.parse(chunked.body).code, 'ADMIN_BODY_TOO_LARGE')
  assert.equal(await allowlist(), before, 'nothing written')
})

test('rest: a caller\'s ?private_token= is a credential, not a field of the write', async t => {
  const g = await adminGate(t)
  const res = await send(g.url, 'POST', `/api/v4/projects/200/job_token_scope/allowlist?private_token=${USERS.maintainer}`, { 'content-type': 'application/json' }, JSON.stringify({ target_project_id: 300 }))
  assert.equal(res.status, 201, res.text)
  // Another query field is still refused as unknown, `__proto__[]` as any other.
  for (const query of ['other=1', '__proto__[]=1']) {
    const refused = await send(g.url, 'POST', `/api/v4/projects/200/job_token_scope/allowlist?private_token=${USERS.maintainer}&${query}`, { 'content-type': 'application/json' }, JSON.stringify({ target_project_id: 300 }))
    assert.equal(refused.status, 400, `${query}: ${refused.text}`)
  }
})

test('admin: a moved project\'s old path names it, as GitLab\'s REST API follows the redirect, for users and the operator', async t => {
  const g = await adminGate(t)
  g.gitlab.redirects.set('acme/old-lib', 200)
  const old = '/api/v4/projects/acme%2Fold-lib/job_token_permissions'
  for (const caller of [{ 'private-token': USERS.maintainer }, op]) {
    const res = await send(g.url, 'PATCH', old, { ...caller, ...json }, body({ package_registry: { generic: { write: 'maintainer' } } }))
    assert.equal(res.status, 200, res.text)
  }
  assert.deepEqual((await g.store.get(200))?.packageRules, { generic: { write: 'maintainer' } })
  assert.equal((await g.store.get(200))?.projectPath, 'acme/lib', 'the path GitLab holds now')
  const developer = await send(g.url, 'GET', old, { 'private-token': USERS.developer })
  assert.equal(developer.status, 403, 'the moved project\'s role decides')
  assert.equal(developer.json().code, 'ADMIN_FORBIDDEN')
  assert.equal(g.seen.length, 0)
})
