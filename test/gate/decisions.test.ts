// The decision table replayed as HTTP requests through a real gate to a fake upstream: the
// upstream sees a request only when it is allowed, and then exactly the canonical path.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GATE_REQUEST_ID, startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

interface Case {
  name: string
  method: string
  path: string
  headers?: Record<string, string>
  body?: string
  status: number
  /** Path the upstream must have received; absent for a deny. */
  forwarded?: string
  code?: string
  message?: string
  decision?: string
  reason?: string
}

const job = (token: string): Record<string, string> => ({ 'job-token': token })

const cases: Case[] = [
  { name: 'no job token: forwarded untouched', method: 'GET', path: '/api/v4/projects/200/variables', headers: { 'private-token': 'glpat-someone' }, status: 200, forwarded: '/api/v4/projects/200/variables', decision: 'no_job_token' },
  { name: 'self access', method: 'POST', path: '/api/v4/projects/100/deployments', headers: job(TOKENS.app), status: 200, forwarded: '/api/v4/projects/100/deployments', reason: 'SELF_ACCESS' },
  { name: 'self access by full path', method: 'GET', path: '/api/v4/projects/acme%2Fplatform%2Fapp/deployments', headers: job(TOKENS.app), status: 200, forwarded: '/api/v4/projects/acme%2Fplatform%2Fapp/deployments', reason: 'SELF_ACCESS' },
  { name: 'fine-grained entry holds the policy', method: 'GET', path: '/api/v4/projects/200/packages', headers: job(TOKENS.app), status: 200, forwarded: '/api/v4/projects/200/packages', reason: 'POLICIES_GRANTED' },
  { name: 'full path resolved case-insensitively', method: 'GET', path: '/api/v4/projects/ACME%2Flib/packages/npm/@acme%2fcli', headers: job(TOKENS.app), status: 200, forwarded: '/api/v4/projects/ACME%2Flib/packages/npm/@acme%2fcli', reason: 'POLICIES_GRANTED' },
  { name: 'HEAD is authorized as GET and forwarded as HEAD', method: 'HEAD', path: '/api/v4/projects/200/packages/5', headers: job(TOKENS.app), status: 200, forwarded: '/api/v4/projects/200/packages/5' },
  {
    name: 'fine-grained entry misses the policy',
    method: 'PUT',
    path: '/api/v4/projects/200/packages/npm/foo',
    headers: job(TOKENS.app),
    status: 403,
    code: 'MISSING_POLICIES',
    message: '403 Forbidden - Insufficient permissions to access this resource in project lib. The following token permission is required: admin_packages.'
  },
  {
    name: 'every policy is required',
    method: 'POST',
    path: '/api/v4/projects/200/deployments',
    headers: job(TOKENS.app),
    status: 403,
    code: 'MISSING_POLICIES',
    message: '403 Forbidden - Insufficient permissions to access this resource in project lib. The following token permissions are required: admin_deployments and admin_environments.'
  },
  { name: 'nearest entry: a group entry with default permissions (no policy check)', method: 'PUT', path: '/api/v4/projects/200/packages/npm/foo', headers: job(TOKENS.web), status: 200, forwarded: '/api/v4/projects/200/packages/npm/foo', reason: 'DEFAULT_PERMISSIONS' },
  { name: 'admin policy implies its read twin', method: 'GET', path: '/api/v4/projects/700/packages', headers: job(TOKENS.tools), status: 200, forwarded: '/api/v4/projects/700/packages', reason: 'POLICIES_GRANTED' },
  { name: 'admin policy granted through a group entry', method: 'PUT', path: '/api/v4/projects/700/packages/npm/foo', headers: job(TOKENS.tools), status: 200, forwarded: '/api/v4/projects/700/packages/npm/foo', reason: 'POLICIES_GRANTED' },
  { name: 'a group entry grants only its policies', method: 'POST', path: '/api/v4/projects/700/deployments', headers: job(TOKENS.tools), status: 403, code: 'MISSING_POLICIES' },
  { name: 'skip-policies endpoint passes a fine-grained entry', method: 'GET', path: '/api/v4/projects/200/packages/conan/v1/ping', headers: job(TOKENS.app), status: 200, forwarded: '/api/v4/projects/200/packages/conan/v1/ping', reason: 'SKIP_POLICIES' },
  {
    name: 'not on the allowlist',
    method: 'GET',
    path: '/api/v4/projects/200/packages',
    headers: job(TOKENS.tools),
    status: 403,
    code: 'NOT_ALLOWLISTED',
    message: '403 Forbidden - Authentication by CI/CD job token not allowed from tools to lib.'
  },
  { name: 'inbound scope off, but the instance enforces it', method: 'GET', path: '/api/v4/projects/500/packages', headers: job(TOKENS.lib), status: 403, code: 'NOT_ALLOWLISTED' },
  { name: 'unknown accessed project: only self access', method: 'GET', path: '/api/v4/projects/400/packages', headers: job(TOKENS.app), status: 403, code: 'UNKNOWN_PROJECT' },
  { name: 'unknown project path', method: 'GET', path: '/api/v4/projects/nobody%2Fhere/packages', headers: job(TOKENS.app), status: 403, code: 'UNKNOWN_PROJECT', message: '403 Forbidden - Authentication by CI/CD job token not allowed from app to here.' },
  { name: 'a route that does not accept job tokens: the token is stripped, the request forwarded anonymously', method: 'GET', path: '/api/v4/projects/200/variables', headers: job(TOKENS.app), status: 200, forwarded: '/api/v4/projects/200/variables', decision: 'no_job_token', reason: 'JOB_TOKEN_STRIPPED' },
  { name: 'finished job', method: 'GET', path: '/api/v4/projects/200/packages', headers: job(TOKENS.appFinished), status: 401, code: 'TOKEN_JOB_NOT_RUNNING', message: '401 Unauthorized' },
  { name: 'unknown token', method: 'GET', path: '/api/v4/projects/200/packages', headers: job('glcbt-64_nosuchtoken00000000000'), status: 401, code: 'TOKEN_UNKNOWN', message: '401 Unauthorized' },
  { name: 'two different credentials', method: 'GET', path: '/api/v4/projects/200/packages', headers: { ...job(TOKENS.app), 'private-token': 'glpat-someone' }, status: 401, code: 'CREDENTIAL_AMBIGUOUS' },
  { name: 'job token in the query string', method: 'PUT', path: '/api/v4/projects/200/packages/npm/foo?job_token=' + TOKENS.app, status: 403, code: 'MISSING_POLICIES' },
  { name: 'job token in a form body', method: 'POST', path: '/api/v4/projects/200/deployments', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `environment=prod&job_token=${TOKENS.app}`, status: 403, code: 'MISSING_POLICIES' },
  { name: 'job token as HTTP Basic on Maven', method: 'PUT', path: '/api/v4/projects/200/packages/maven/com/acme/app/1.0/app-1.0.jar', headers: { authorization: 'Basic ' + Buffer.from(`gitlab-ci-token:${TOKENS.app}`).toString('base64') }, status: 403, code: 'MISSING_POLICIES' },
  { name: 'dot segment', method: 'GET', path: '/api/v4/projects/100/%2e%2e/200/packages', headers: job(TOKENS.app), status: 400, code: 'PATH_DOT_SEGMENT' },
  { name: 'canonical path forwarded, not the raw one (its trailing slash kept, for Workhorse)', method: 'GET', path: '//api//v4/projects/200/packages/npm/%2D/package/x/dist-tags/', headers: job(TOKENS.app), status: 200, forwarded: '/api/v4/projects/200/packages/npm/-/package/x/dist-tags/' },
  { name: 'group route deferred to upstream', method: 'GET', path: '/api/v4/groups/10/-/packages/maven/com/acme/app/1.0/app-1.0.jar', headers: job(TOKENS.app), status: 200, forwarded: '/api/v4/groups/10/-/packages/maven/com/acme/app/1.0/app-1.0.jar', decision: 'deferred' },
  { name: "the job's own artifacts", method: 'GET', path: '/api/v4/jobs/1/artifacts', headers: job(TOKENS.app), status: 200, forwarded: '/api/v4/jobs/1/artifacts', reason: 'SELF_ACCESS' },
  { name: "another job's artifacts: deferred", method: 'GET', path: '/api/v4/jobs/99/artifacts', headers: job(TOKENS.app), status: 200, forwarded: '/api/v4/jobs/99/artifacts', decision: 'deferred' },
  { name: 'non-API path with a job token: forwarded by default', method: 'GET', path: '/acme/lib.git/info/refs?service=git-upload-pack', headers: job(TOKENS.app), status: 200, forwarded: '/acme/lib.git/info/refs?service=git-upload-pack', decision: 'deferred' }
]

test('the decision table through real sockets', async (t) => {
  const g = await startTestGate(t)
  for (const c of cases) {
    await t.test(c.name, async () => {
      const before = g.seen.length
      const logsBefore = g.logs.length
      const res = await send(g.url, c.method, c.path, { ...c.headers, 'x-request-id': 'req-' + c.name.length }, c.body)
      assert.equal(res.status, c.status, res.text)
      if (c.forwarded !== undefined) {
        assert.equal(g.seen.length, before + 1, 'the upstream received the request')
        assert.equal(g.seen.at(-1)!.url, c.forwarded)
        assert.equal(g.seen.at(-1)!.method, c.method)
        assert.ok(typeof g.seen.at(-1)!.headers['x-request-id'] === 'string', 'a request id is sent upstream')
      } else {
        assert.equal(g.seen.length, before, 'the upstream never saw a denied request')
        const body = res.json()
        assert.equal(body.code, c.code)
        if (c.message !== undefined) assert.equal(body.message, c.message)
        assert.equal(body.request_id, 'req-' + c.name.length, 'a trusted peer\'s request id is kept')
        assert.equal(res.headers['x-request-id'], body.request_id)
      }
      const log = g.logs.slice(logsBefore).find(l => l.msg === 'decision')
      if (c.decision !== undefined) assert.equal(log?.decision, c.decision)
      if (c.reason !== undefined) assert.equal(log?.reason, c.reason)
    })
  }
})

test("the token's own job is self access (GET /job reaches GitLab)", async (t) => {
  const g = await startTestGate(t)
  const res = await send(g.url, 'GET', '/api/v4/job', job(TOKENS.app))
  assert.equal(res.status, 200)
  assert.equal(res.json().id, 1, 'answered by the fake GitLab')
  assert.equal(g.logs.filter(l => l.msg === 'decision').at(-1)?.reason, 'SELF_ACCESS')
})

test('request ids from untrusted peers are replaced', async (t) => {
  const g = await startTestGate(t, { GATE_TRUSTED_PROXIES: '192.0.2.1' })
  const res = await send(g.url, 'GET', '/api/v4/projects/200/packages', { ...job(TOKENS.appFinished), 'x-request-id': 'chosen-by-client', 'x-forwarded-for': '203.0.113.9' })
  assert.equal(res.status, 401)
  // The gate's own: this process's random prefix and a count.
  const first = GATE_REQUEST_ID.exec(res.json().request_id)
  assert.ok(first !== null, res.json().request_id)
  await send(g.url, 'GET', '/api/v4/projects/200/variables', { 'x-request-id': 'chosen-by-client', 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'evil.example' })
  const seen = g.seen.at(-1)!
  const second = GATE_REQUEST_ID.exec(String(seen.headers['x-request-id']))
  assert.ok(second !== null, String(seen.headers['x-request-id']))
  assert.equal(second[0].slice(0, 16), first[0].slice(0, 16), 'one prefix per process')
  assert.notEqual(second[0], first[0], 'a new id per request')
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'an untrusted X-Forwarded-For is replaced')
  assert.notEqual(seen.headers['x-forwarded-host'], 'evil.example')
})

test('Basic-auth package routes answer 401 with the registry realm', async (t) => {
  const g = await startTestGate(t)
  const res = await send(g.url, 'GET', '/api/v4/projects/200/packages/maven/com/acme/app/1.0/app-1.0.jar', job(TOKENS.appFinished))
  assert.equal(res.status, 401)
  assert.equal(res.headers['www-authenticate'], 'Basic realm="GitLab Packages Registry"')
  const plain = await send(g.url, 'GET', '/api/v4/projects/200/deployments', job(TOKENS.appFinished))
  assert.equal(plain.status, 401)
  assert.equal(plain.headers['www-authenticate'], undefined)
})

test('settings: deny job tokens outside the API and where the project is not in the URL; inbound scope off', async (t) => {
  const g = await startTestGate(t, { GATE_NON_API_JOB_TOKENS: 'deny', GATE_UNRESOLVED_PROJECT: 'deny', GATE_ENFORCE_INBOUND_SCOPE: 'false' })
  const git = await send(g.url, 'GET', '/acme/lib.git/info/refs', job(TOKENS.app))
  assert.equal(git.status, 403)
  assert.equal(git.json().code, 'NON_API_JOB_TOKEN')
  const group = await send(g.url, 'GET', '/api/v4/groups/10/-/packages/maven/com/acme/app/1.0/app-1.0.jar', job(TOKENS.app))
  assert.equal(group.status, 403)
  assert.equal(group.json().code, 'PROJECT_NOT_IN_URL')
  const own = await send(g.url, 'GET', '/api/v4/jobs/1/artifacts', job(TOKENS.app))
  assert.equal(own.status, 200, 'own artifacts stay self access')
  const open = await send(g.url, 'GET', '/api/v4/projects/500/packages', job(TOKENS.lib))
  assert.equal(open.status, 200, 'acme/open has its inbound scope off and the instance no longer enforces it')
  assert.equal(g.logs.filter(l => l.msg === 'decision').at(-1)?.reason, 'INBOUND_DISABLED')
  const anonymous = await send(g.url, 'GET', '/acme/lib.git/info/refs')
  assert.equal(anonymous.status, 200, 'requests without a job token are not affected')
})

test('shadow mode forwards what it would deny, globally or per resource', async (t) => {
  const all = await startTestGate(t, { GATE_MODE: 'shadow' })
  const res = await send(all.url, 'PUT', '/api/v4/projects/200/packages/npm/foo', job(TOKENS.app))
  assert.equal(res.status, 200)
  assert.equal(all.seen.length, 1)
  const log = all.logs.filter(l => l.msg === 'decision').at(-1)
  assert.equal(log?.decision, 'would_deny')
  assert.equal(log?.reason, 'MISSING_POLICIES')
  assert.deepEqual(log?.missing_policies, ['admin_packages'])
  const bad = await send(all.url, 'GET', '/api/v4/projects/%2e%2e/x', job(TOKENS.app))
  assert.equal(bad.status, 400, 'malformed paths are refused in every mode')

  const some = await startTestGate(t, { GATE_SHADOW_RESOURCES: 'packages' })
  assert.equal((await send(some.url, 'PUT', '/api/v4/projects/200/packages/npm/foo', job(TOKENS.app))).status, 200)
  assert.equal((await send(some.url, 'POST', '/api/v4/projects/200/deployments', job(TOKENS.app))).status, 403)
  assert.equal(some.seen.length, 1)
})

test('no token ever appears in a log line', async (t) => {
  const g = await startTestGate(t)
  const basic = Buffer.from(`gitlab-ci-token:${TOKENS.tools}`).toString('base64')
  await send(g.url, 'GET', '/api/v4/projects/200/packages', job(TOKENS.app))
  await send(g.url, 'GET', '/api/v4/projects/200/packages?job_token=' + TOKENS.tools)
  await send(g.url, 'GET', '/api/v4/projects/200/packages', { authorization: 'Basic ' + basic })
  await send(g.url, 'GET', '/api/v4/projects/200/packages', { authorization: 'Bearer ' + TOKENS.lib })
  await send(g.url, 'GET', '/api/v4/projects/200/packages', { ...job(TOKENS.app), 'private-token': 'glpat-secretvalue' })
  await send(g.url, 'POST', '/api/v4/projects/200/deployments', { 'content-type': 'application/json' }, JSON.stringify({ job_token: TOKENS.appFinished }))
  const text = JSON.stringify(g.logs)
  assert.ok(g.logs.length >= 6)
  for (const secret of [...Object.values(TOKENS), basic, 'glpat-secretvalue']) assert.ok(!text.includes(secret), 'a token leaked into the logs')
})
