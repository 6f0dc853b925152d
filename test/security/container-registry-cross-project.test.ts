// Finding: GitLab's container registry repositories API (`job_token_scope: :project`,
// lib/api/project_container_repositories.rb) takes a job token only for the job's own project:
// find_project! refuses any other project first, allowlisted or not (lib/api/helpers.rb,
// authorized_project_scope?). The catalog listed these routes as skipping policies only, so the
// gate let an allowlisted project's job through.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const MESSAGE = "403 Forbidden - This project's CI/CD job token cannot be used to authenticate with the container registry of a different project."

test('a job token from another project is refused on every registry repositories route, allowlisted or not', async t => {
  const g = await startTestGate(t)
  // acme/registry (700) allowlists the group of other/tools (300); acme/lib (200) gives every acme job default permissions.
  const cases: Array<[string, string, string]> = [
    [TOKENS.tools, 'GET', '/api/v4/projects/700/registry/repositories'],
    [TOKENS.tools, 'GET', '/api/v4/projects/acme%2Fregistry/registry/repositories/5/tags'],
    [TOKENS.tools, 'GET', '/api/v4/projects/700/registry/repositories/5/tags/latest'],
    [TOKENS.tools, 'DELETE', '/api/v4/projects/700/registry/repositories/5'],
    [TOKENS.tools, 'DELETE', '/api/v4/projects/700/registry/repositories/5/tags'],
    [TOKENS.web, 'DELETE', '/api/v4/projects/200/registry/repositories/5/tags/latest'],
    [TOKENS.tools, 'GET', '/api/v4/projects/200/registry/repositories']
  ]
  for (const [token, method, path] of cases) {
    const res = await send(g.url, method, path, { 'job-token': token })
    assert.equal(res.status, 403, `${method} ${path}: ${res.text}`)
    assert.equal(res.json().code, 'JOB_TOKEN_SCOPE_PROJECT_ONLY', `${method} ${path}`)
    assert.equal(res.json().message, MESSAGE)
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})

test('the job\'s own project is allowed, by id and by path, and other skip-policies routes still skip', async t => {
  const g = await startTestGate(t)
  const own = await send(g.url, 'GET', '/api/v4/projects/300/registry/repositories', { 'job-token': TOKENS.tools })
  assert.equal(own.status, 200, own.text)
  const byPath = await send(g.url, 'DELETE', '/api/v4/projects/other%2Ftools/registry/repositories/5/tags/v1', { 'job-token': TOKENS.tools })
  assert.equal(byPath.status, 200, byPath.text)
  assert.deepEqual(g.seen.map(r => `${r.method} ${r.url}`), [
    'GET /api/v4/projects/300/registry/repositories',
    'DELETE /api/v4/projects/other%2Ftools/registry/repositories/5/tags/v1'
  ])
  // Conan's ping skips policies too, without job_token_scope: the allowlist entry suffices.
  const ping = await send(g.url, 'GET', '/api/v4/projects/700/packages/conan/v1/ping', { 'job-token': TOKENS.tools })
  assert.equal(ping.status, 200, ping.text)
  const reasons = g.logs.filter(l => l['msg'] === 'decision' || l['reason'] !== undefined).map(l => l['reason'])
  assert.ok(reasons.includes('SELF_ACCESS'), JSON.stringify(reasons))
  assert.ok(reasons.includes('SKIP_POLICIES'), JSON.stringify(reasons))
})
