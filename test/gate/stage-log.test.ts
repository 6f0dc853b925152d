// Every decision line names the stage that decided, with the verdict and reason that stage
// returned: through a real gate, for each stage that can decide, the listeners' own steps
// (forward-auth, forwarding) included.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { STAGES } from '../../src/gate/pipeline.ts'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })

interface Case {
  readonly name: string
  readonly method: string
  readonly path: string
  readonly headers: Record<string, string>
  readonly status: number
  readonly decision: string
  readonly reason: string
  readonly stage: string
}

const cases: Case[] = [
  { name: 'a path Rails would read differently', method: 'GET', path: '/api/v4/projects/100/%2e%2e/200/packages', headers: job(TOKENS.app), status: 400, decision: 'deny', reason: 'PATH_DOT_SEGMENT', stage: 'canonicalize' },
  { name: 'Connection names a credential header', method: 'GET', path: '/api/v4/projects/200/packages', headers: { ...job(TOKENS.app), connection: 'job-token' }, status: 400, decision: 'deny', reason: 'CONNECTION_DROPS_DECISION_HEADER', stage: 'check_headers' },
  { name: 'unknown job token', method: 'GET', path: '/api/v4/projects/200/packages', headers: job('glcbt-64_nosuchtoken00000000000'), status: 401, decision: 'deny', reason: 'TOKEN_UNKNOWN', stage: 'identify' },
  { name: 'a route that does not accept job tokens', method: 'GET', path: '/api/v4/projects/200/variables', headers: job(TOKENS.app), status: 200, decision: 'no_job_token', reason: 'JOB_TOKEN_STRIPPED', stage: 'identify' },
  { name: 'a job token outside the API', method: 'GET', path: '/acme/lib.git/info/refs?service=git-upload-pack', headers: job(TOKENS.app), status: 200, decision: 'deferred', reason: 'NON_API_PATH', stage: 'identify' },
  { name: 'no job token', method: 'GET', path: '/api/v4/projects/200/variables', headers: { 'private-token': 'glpat-someone' }, status: 200, decision: 'no_job_token', reason: 'NO_JOB_TOKEN', stage: 'user_roles' },
  { name: "the job's own artifacts", method: 'GET', path: '/api/v4/jobs/1/artifacts', headers: job(TOKENS.app), status: 200, decision: 'allow', reason: 'SELF_ACCESS', stage: 'resolve_grants' },
  { name: 'unknown project path', method: 'GET', path: '/api/v4/projects/nobody%2Fhere/packages', headers: job(TOKENS.app), status: 403, decision: 'deny', reason: 'UNKNOWN_PROJECT', stage: 'resolve_grants' },
  { name: 'project not in the URL', method: 'GET', path: '/api/v4/group/10/-/packages/composer/packages', headers: job(TOKENS.app), status: 200, decision: 'deferred', reason: 'PROJECT_NOT_IN_URL', stage: 'resolve_grants' },
  { name: 'no project found', method: 'GET', path: '/api/v4/groups/10/-/packages/maven/com/acme/app/1.0/app-1.0.jar', headers: job(TOKENS.app), status: 200, decision: 'deferred', reason: 'NO_PROJECT', stage: 'resolve_grants' },
  { name: 'self access', method: 'POST', path: '/api/v4/projects/100/deployments', headers: job(TOKENS.app), status: 200, decision: 'allow', reason: 'SELF_ACCESS', stage: 'decide' },
  { name: 'allowlisted with the policy', method: 'GET', path: '/api/v4/projects/200/packages', headers: job(TOKENS.app), status: 200, decision: 'allow', reason: 'POLICIES_GRANTED', stage: 'decide' },
  { name: 'missing a policy', method: 'PUT', path: '/api/v4/projects/200/packages/npm/foo', headers: job(TOKENS.app), status: 403, decision: 'deny', reason: 'MISSING_POLICIES', stage: 'decide' },
  { name: 'not on the allowlist', method: 'GET', path: '/api/v4/projects/200/packages', headers: job(TOKENS.tools), status: 403, decision: 'deny', reason: 'NOT_ALLOWLISTED', stage: 'decide' }
]

const lastDecision = (logs: ReadonlyArray<Record<string, unknown>>): Record<string, unknown> | undefined => logs.filter(l => l.msg === 'decision').at(-1)

test('the stages run in this order, the users\' role check on its own', () => {
  assert.deepEqual(STAGES.map(([name]) => name), ['canonicalize', 'check_headers', 'match_route', 'identify', 'user_roles', 'resolve_grants', 'decide', 'package_rules'])
})

test('each decision line names the stage that decided', async (t) => {
  const g = await startTestGate(t)
  for (const c of cases) {
    const res = await send(g.url, c.method, c.path, c.headers)
    assert.equal(res.status, c.status, `${c.name}: ${res.text}`)
    const line = lastDecision(g.logs)
    assert.deepEqual({ decision: line?.decision, reason: line?.reason, stage: line?.stage }, { decision: c.decision, reason: c.reason, stage: c.stage }, c.name)
    if (c.status >= 400) assert.equal(res.json().code, c.reason, `${c.name}: the response code is the reason`)
  }
})

test('shadow mode: the stage whose deny was shadowed is named', async (t) => {
  const g = await startTestGate(t, { GATE_MODE: 'shadow' })
  assert.equal((await send(g.url, 'PUT', '/api/v4/projects/200/packages/npm/foo', job(TOKENS.app))).status, 200)
  const line = lastDecision(g.logs)
  assert.deepEqual([line?.decision, line?.reason, line?.stage], ['would_deny', 'MISSING_POLICIES', 'decide'])
})

test('package rules: job tokens are refused by package_rules, users by user_roles', async (t) => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN }, JSON.stringify({ package_registry: { maven: { write: 'job_token_and_maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const jar = '/api/v4/projects/200/packages/maven/com/acme/lib/1.0/lib-1.0.jar'
  const developer = await send(g.url, 'PUT', jar, { 'private-token': USERS.developer }, 'jar')
  assert.equal(developer.status, 403, developer.text)
  assert.deepEqual([lastDecision(g.logs)?.reason, lastDecision(g.logs)?.stage], ['PACKAGE_MAINTAINER_ONLY', 'user_roles'])
  await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN }, JSON.stringify({ package_registry: { maven: { write: 'maintainer' } } }))
  const jobToken = await send(g.url, 'PUT', jar, job(TOKENS.lib), 'jar')
  assert.equal(jobToken.status, 403, jobToken.text)
  assert.deepEqual([lastDecision(g.logs)?.reason, lastDecision(g.logs)?.stage], ['PACKAGE_MAINTAINER_ONLY', 'package_rules'])
})

test('after the stages: an upstream failure is logged by the forward step, a forward-auth refusal by forward_auth', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_TRUSTED_PROXIES: '192.0.2.1' })
  g.respond = (_req, res) => { res.socket?.destroy() }
  const failed = await send(g.url, 'GET', '/api/v4/projects/200/packages', job(TOKENS.app))
  assert.equal(failed.status, 502, failed.text)
  assert.equal(failed.json().request_id, failed.headers['x-request-id'])
  assert.deepEqual([lastDecision(g.logs)?.decision, lastDecision(g.logs)?.reason, lastDecision(g.logs)?.stage], ['error', 'UPSTREAM_UNAVAILABLE', 'forward'])

  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const untrusted = await send(auth, 'GET', '/', { 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/200/packages', ...job(TOKENS.app) })
  assert.equal(untrusted.status, 403)
  assert.deepEqual([lastDecision(g.logs)?.reason, lastDecision(g.logs)?.stage], ['FORWARD_AUTH_UNTRUSTED', 'forward_auth'])
  const allowed = await send(auth, 'GET', '/api/v4/projects/200/packages', job(TOKENS.app))
  assert.equal(allowed.status, 200)
  assert.equal(allowed.text, '', 'an allow has no body: nginx keeps the connection')
  assert.deepEqual([allowed.headers['x-job-token-gate-decision'], allowed.headers['x-job-token-gate-reason']], ['allow', 'POLICIES_GRANTED'])
  assert.equal(typeof allowed.headers['x-request-id'], 'string')
  assert.deepEqual([lastDecision(g.logs)?.reason, lastDecision(g.logs)?.stage], ['POLICIES_GRANTED', 'decide'])
})
