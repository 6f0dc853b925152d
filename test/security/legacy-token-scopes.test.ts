// A Maintainer's legacy personal access token or OAuth token with only `read_api` changed the
// allowlist and the job token permissions through the configuration API: the gate asked GitLab
// `GET /projects/:id` with the token (which read_api may call), saw the Maintainer role and wrote.
// GitLab refuses every such write (lib/api/api.rb: read_api for GET and HEAD only; GraphQL
// mutations need api). The gate now applies the same scopes (src/admin/token-scope.ts): writes
// need api, reads api or read_api; a write by a token whose scopes GitLab did not show is
// refused (fail closed), one GitLab refuses still answered 401.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, type TestGate } from '../helpers/gate.ts'
import { scrape, total } from '../helpers/metrics.ts'

const ADMIN = 'gate-operator-secret-token'
const READ_API = 'glpat-maintainer-read-api-only'
const API = 'glpat-maintainer-api'
const READ_USER = 'glpat-maintainer-read-user-only'
const NO_SCOPES = 'glpat-maintainer-scopes-not-shown'
const OAUTH_API = 'oauth-maintainer-api'
const OAUTH_READ_API = 'oauth-maintainer-read-api'
const UNKNOWN = 'glpat-gitlab-does-not-know-this'

// Every holder is a Maintainer of acme/lib (200) and sees other/tools (300): only the scopes refuse.
const USERS = Object.fromEntries([READ_API, API, READ_USER, NO_SCOPES, OAUTH_API, OAUTH_READ_API].map((token, i) =>
  [token, { id: 70 + i, username: `m${i}`, access: { 200: 40, 300: 20 } }]))
const record = (id: number, scopes?: readonly string[]): Record<string, unknown> =>
  ({ id, name: 'token', user_id: id, active: true, revoked: false, ...(scopes === undefined ? {} : { scopes }) })

async function start (t: TestContext): Promise<TestGate> {
  return await startTestGate(t, { GATE_ADMIN_TOKEN: ADMIN }, {
    users: USERS,
    accessTokens: {
      [READ_API]: record(70, ['read_api']),
      [API]: record(71, ['api']),
      [READ_USER]: record(72, ['read_user']),
      [NO_SCOPES]: record(73)
    },
    oauthTokens: { [OAUTH_API]: ['api', 'openid'], [OAUTH_READ_API]: ['read_api'] }
  })
}

interface Answer { status: number, body: any, headers: Headers }

async function rest (g: TestGate, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Answer> {
  const res = await fetch(`${g.url}/api/v4/projects/200${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers }
}

async function graphql (g: TestGate, token: string, query: string): Promise<Answer> {
  const res = await fetch(`${g.url}/api/graphql`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ query }) })
  return { status: res.status, body: await res.json(), headers: res.headers }
}

const pat = (token: string): Record<string, string> => ({ 'private-token': token })
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

const WRITES: ReadonlyArray<readonly [string, string, string, unknown]> = [
  ['add a project entry', 'POST', '/job_token_scope/allowlist', { target_project_id: 300 }],
  ['add a group entry', 'POST', '/job_token_scope/groups_allowlist', { target_group_id: 20 }],
  ['turn the scope on', 'PATCH', '/job_token_scope', { enabled: true }],
  ['change the package rules', 'PATCH', '/job_token_permissions', { package_registry: { maven: { write: 'job_token_and_maintainer' } } }],
  ['change an entry', 'PATCH', '/job_token_scope/allowlist/100', { job_token_policies: ['read_packages'] }],
  ['remove an entry', 'DELETE', '/job_token_scope/allowlist/100', undefined]
]
const READS = ['/job_token_scope', '/job_token_scope/allowlist', '/job_token_scope/groups_allowlist', '/job_token_permissions', '/job_token_permissions/audit_events']
const ADD_MUTATION = 'mutation { ciJobTokenScopeAddProject(input: {projectPath: "acme/lib", targetProjectPath: "other/tools"}) { errors } }'
const READ_QUERY = '{ project(fullPath: "acme/lib") { jobTokenPermissions { jobTokenPoliciesEnabled } } }'

function assertInsufficient (answer: Answer, scope: string, what: string): void {
  assert.equal(answer.status, 403, `${what}: ${JSON.stringify(answer.body)}`)
  assert.equal(answer.body.code, 'ADMIN_TOKEN_SCOPE_INSUFFICIENT', what)
  assert.equal(answer.body.error, 'insufficient_scope', what)
  assert.equal(answer.body.error_description, 'The request requires higher privileges than provided by the access token.', what)
  assert.equal(answer.body.scope, scope, what)
  assert.equal(typeof answer.body.message, 'string', what)
  assert.equal(typeof answer.body.request_id, 'string', what)
  assert.match(answer.headers.get('www-authenticate') ?? '', new RegExp(`error="insufficient_scope".*scope="${scope}"`), what)
}

test('read_api (PAT or OAuth): every REST write and the GraphQL mutation refused 403 insufficient_scope, nothing written, logged and counted; reads still answered', async t => {
  const g = await start(t)
  const before = JSON.stringify(await g.store.get(200))
  for (const [name, headers] of [['PAT', pat(READ_API)], ['PAT as Bearer', bearer(READ_API)], ['OAuth', bearer(OAUTH_READ_API)]] as const) {
    for (const [what, method, path, body] of WRITES) assertInsufficient(await rest(g, method, path, headers, body), 'api', `${name}: ${what}`)
    for (const path of READS) assert.equal((await rest(g, 'GET', path, headers)).status, 200, `${name}: GET ${path}`)
  }
  for (const token of [READ_API, OAUTH_READ_API]) {
    assertInsufficient(await graphql(g, token, ADD_MUTATION), 'api', `${token}: GraphQL mutation`)
    const read = await graphql(g, token, READ_QUERY)
    assert.equal(read.status, 200)
    assert.equal(read.body.errors, undefined, JSON.stringify(read.body))
    assert.equal(typeof read.body.data.project.jobTokenPermissions, 'object')
  }
  assert.equal(JSON.stringify(await g.store.get(200)), before, 'the store is unchanged')
  assert.equal(g.seen.length, 0, 'nothing forwarded to GitLab')
  const refusals = WRITES.length * 3 + 2
  const { samples } = await scrape(g.healthUrl)
  assert.equal(total(samples, 'job_token_gate_admin_refusals_total', { code: 'ADMIN_TOKEN_SCOPE_INSUFFICIENT' }), refusals)
  assert.equal(g.logs.filter(l => l.reason === 'ADMIN_TOKEN_SCOPE_INSUFFICIENT' && l.scope === 'api').length, refusals)
})

test('api (PAT or OAuth): the same writes go through, REST and GraphQL', async t => {
  const g = await start(t)
  const added = await rest(g, 'POST', '/job_token_scope/allowlist', pat(API), { target_project_id: 300 })
  assert.equal(added.status, 201, JSON.stringify(added.body))
  assert.equal((await rest(g, 'PATCH', '/job_token_permissions', bearer(OAUTH_API), { package_registry: { maven: { write: 'job_token_and_maintainer' } } })).status, 200)
  assert.equal((await rest(g, 'DELETE', '/job_token_scope/allowlist/300', bearer(OAUTH_API))).status, 204)
  for (const token of [API, OAUTH_API]) {
    const mutation = await graphql(g, token, ADD_MUTATION)
    assert.equal(mutation.status, 200, JSON.stringify(mutation.body))
    assert.ok(mutation.body.data?.ciJobTokenScopeAddProject != null, JSON.stringify(mutation.body))
    assert.deepEqual(mutation.body.data.ciJobTokenScopeAddProject.errors, token === API ? [] : ['the target is already in the job token scope allowlist'])
  }
  assert.equal((await rest(g, 'PATCH', '/job_token_scope', pat(API), { enabled: true })).status, 204)
  assert.ok((await g.store.get(200))?.entries.some(e => e.targetId === 300), 'the entry was written')
})

test('a token with neither api nor read_api: reads refused too, naming both scopes', async t => {
  const g = await start(t)
  assertInsufficient(await rest(g, 'GET', '/job_token_scope/allowlist', pat(READ_USER)), 'api read_api', 'GET')
  assertInsufficient(await rest(g, 'POST', '/job_token_scope/allowlist', pat(READ_USER), { target_project_id: 300 }), 'api', 'POST')
  assertInsufficient(await graphql(g, READ_USER, READ_QUERY), 'api read_api', 'GraphQL query')
})

test('scopes GitLab does not show: writes refused (fail closed), reads answered; a token GitLab refuses keeps its answer (401); the operator token unchanged', async t => {
  const g = await start(t)
  for (const [what, method, path, body] of WRITES) {
    const answer = await rest(g, method, path, pat(NO_SCOPES), body)
    assertInsufficient(answer, 'api', what)
    assert.match(answer.body.message, /did not show/, what)
  }
  assertInsufficient(await graphql(g, NO_SCOPES, ADD_MUTATION), 'api', 'GraphQL mutation')
  assert.equal((await rest(g, 'GET', '/job_token_scope/allowlist', pat(NO_SCOPES))).status, 200)

  const refused = await rest(g, 'POST', '/job_token_scope/allowlist', pat(UNKNOWN), { target_project_id: 300 })
  assert.deepEqual([refused.status, refused.body.code], [401, 'ADMIN_UNAUTHENTICATED'])
  // Over GraphQL, as before: the Maintainer check (by path, which this fake GitLab does not
  // answer for an unknown token) refuses it in the field, nothing runs.
  const refusedGraphql = await graphql(g, UNKNOWN, ADD_MUTATION)
  assert.equal(refusedGraphql.status, 200)
  assert.equal(refusedGraphql.body.data.ciJobTokenScopeAddProject, null)
  assert.equal(refusedGraphql.body.errors.length, 1)
  assert.ok(!(await g.store.get(200))?.entries.some(e => e.targetId === 300), 'nothing written')
  assert.equal((await rest(g, 'GET', '/job_token_scope', pat(UNKNOWN))).status, 401)

  assert.equal((await rest(g, 'POST', '/job_token_scope/allowlist', pat(ADMIN), { target_project_id: 300 })).status, 201)
})
