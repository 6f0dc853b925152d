// Finding: GitLab's pipeline trigger API (`POST /projects/:id/(ref/:ref/)trigger/pipeline`,
// lib/api/ci/triggers.rb) takes a CI/CD job token in its `token` parameter, the usual way to start
// a multi-project pipeline (`curl --form token=$CI_JOB_TOKEN --form ref=main .../trigger/pipeline`).
// The route declares no `job_token_allowed`: Ci::PipelineTriggerService reads the token itself and
// authorizes it through ProjectPolicy, whose job token scope is the accessed project's allowlist
// (never job_token_policies). The catalog lacked the route, so the gate refused such a token in a
// body (JOB_TOKEN_IN_BODY) and stripped one from the query (GitLab then answered 400: token
// missing). The route is in the catalog now (catalog/sources/gitlab-source-routes.json,
// `handlerTokenRoutes`): decided by the allowlist, policies skipped, the token found wherever it is.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

// acme/lib (200): acme/platform/app (100) has a fine-grained entry with read_packages only; every
// other acme job has default permissions; other/tools (300) is not allowlisted.
const LIB = '/api/v4/projects/200/trigger/pipeline'
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const MULTIPART = { 'content-type': 'multipart/form-data; boundary=xyz' }
const JSON_TYPE = { 'content-type': 'application/json' }
const field = (name: string, value: string): string => `--xyz\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`

/** The forms a job sends the token in: query, form, multipart (curl --form), JSON. */
function requests (token: string, path = LIB): Array<{ name: string, target: string, headers: Record<string, string>, body?: string }> {
  return [
    { name: 'query', target: `${path}?ref=main&token=${token}`, headers: {} },
    { name: 'form', target: path, headers: FORM, body: `ref=main&token=${token}&variables[A]=b` },
    { name: 'multipart', target: path, headers: MULTIPART, body: `${field('token', token)}${field('ref', 'main')}--xyz--\r\n` },
    { name: 'JSON', target: path, headers: JSON_TYPE, body: JSON.stringify({ ref: 'main', token }) },
    { name: 'ref in the path, holding a /', target: `/api/v4/projects/200/ref/feature/x/trigger/pipeline?token=${token}`, headers: {} }
  ]
}

function decision (g: TestGate, from: number): Record<string, unknown> | undefined {
  return g.logs.slice(from).find(l => l.msg === 'decision')
}

test('an allowlisted job triggers a pipeline with its token in the query or any body: forwarded as sent', async t => {
  const g = await startTestGate(t)
  for (const c of requests(TOKENS.web)) {
    const before = g.seen.length
    const logs = g.logs.length
    const res = await send(g.url, 'POST', c.target, c.headers, c.body)
    assert.equal(res.status, 200, `${c.name}: ${res.text}`)
    assert.equal(g.seen.length, before + 1, c.name)
    const seen = g.seen.at(-1)!
    assert.equal(seen.url, c.target, `${c.name}: the token is not stripped, GitLab reads it`)
    assert.equal(seen.bytes, Buffer.byteLength(c.body ?? ''), `${c.name}: the body is forwarded whole`)
    assert.equal(decision(g, logs)?.reason, 'DEFAULT_PERMISSIONS', c.name)
  }
})

test('GitLab checks no job token policies there: a fine-grained entry without pipeline policies triggers', async t => {
  const g = await startTestGate(t)
  for (const c of requests(TOKENS.app)) {
    const logs = g.logs.length
    const res = await send(g.url, 'POST', c.target, c.headers, c.body)
    assert.equal(res.status, 200, `${c.name}: ${res.text}`)
    assert.equal(decision(g, logs)?.reason, 'SKIP_POLICIES', c.name)
  }
  assert.equal(g.seen.length, 5)
})

test('a job outside the allowlist is refused with GitLab\'s allowlist message, wherever its token is', async t => {
  const g = await startTestGate(t)
  const tries = [
    ...requests(TOKENS.tools),
    ...requests(TOKENS.tools, '/api/v4/projects/acme%2Flib/trigger/pipeline'),
    // Spellings Rack reads as `token`.
    { name: 'token[]', target: `${LIB}?ref=main&token[]=${TOKENS.tools}`, headers: {} },
    { name: 'an escaped name', target: LIB, headers: FORM, body: `ref=main&%74oken=${TOKENS.tools}` },
    { name: '.json', target: `${LIB}.json?ref=main;token=${TOKENS.tools}`, headers: {} }
  ]
  for (const c of tries) {
    const res = await send(g.url, 'POST', c.target, c.headers, c.body)
    assert.equal(res.status, 403, `${c.name} ${c.target}: ${res.text}`)
    assert.equal(res.json().message, '403 Forbidden - Authentication by CI/CD job token not allowed from tools to lib.', c.name)
    assert.equal(res.json().code, 'NOT_ALLOWLISTED', c.name)
  }
  // A token in a multipart body too large to hold is checked as it streams: never forwarded.
  const large = `${field('ref', 'a'.repeat(100_000))}${field('token', TOKENS.tools)}--xyz--\r\n`
  const streamed = await send(g.url, 'POST', LIB, MULTIPART, large)
  assert.ok(streamed.status === 401 || streamed.status === 403, streamed.text)
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})

test('a public project is no way round: ProjectPolicy keeps create_pipeline from jobs outside its allowlist', async t => {
  const g = await startTestGate(t)
  g.gitlab.projects.get(200)!.visibility = 'public'
  const res = await send(g.url, 'POST', `${LIB}?ref=main&token=${TOKENS.tools}`)
  assert.equal(res.status, 403, res.text)
  assert.equal(res.json().code, 'NOT_ALLOWLISTED')
  assert.equal(g.seen.length, 0)
})

test('a trigger token in the same parameter is not a job token: passed on as sent, for GitLab to check', async t => {
  const g = await startTestGate(t)
  const trigger = 'glptt-0123456789abcdef0123'
  for (const c of requests(trigger, '/api/v4/projects/300/trigger/pipeline')) {
    const before = g.seen.length
    const logs = g.logs.length
    const res = await send(g.url, 'POST', c.target, c.headers, c.body)
    assert.equal(res.status, 200, `${c.name}: ${res.text}`)
    assert.equal(g.seen.length, before + 1, c.name)
    assert.equal(g.seen.at(-1)!.url, c.target, c.name)
    assert.equal(decision(g, logs)?.decision, 'no_job_token', c.name)
  }
})
