// Finding: GitLab's Debian distributions API (`/projects/:id/debian_distributions`,
// `/groups/:id/-/debian_distributions`: lib/api/concerns/packages/debian_distribution_endpoints.rb)
// and RubyGems registry (`/projects/:id/packages/rubygems/...`: lib/api/rubygem_packages.rb) take
// job tokens through `authenticate_with` (the Job-Token header; the whole Authorization value), and
// their project routes find the project with find_project! (allowlist, then policies: none). The
// catalog lacked them, so the gate stripped such a token and GitLab answered 401 where it would
// have served the job. They are in the catalog now, decided as the other authenticate_with
// routes, with Debian's and RubyGems' package rules.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN } from '../helpers/admin-gate.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { assertForwardedWithToken, assertRefusedOutsideAndFineGrained } from '../helpers/job-token-routes.ts'

// acme/lib (200): acme/platform/app (100) has a fine-grained entry with read_packages; every other
// acme job (acme/platform/web, 600) has default permissions; other/tools (300) is not allowlisted.
const json = { 'content-type': 'application/json' }
const ROUTES: ReadonlyArray<{ method: string, path: string, headers: (token: string) => Record<string, string>, body?: string }> = [
  { method: 'GET', path: '/api/v4/projects/200/debian_distributions', headers: token => ({ 'job-token': token }) },
  { method: 'POST', path: '/api/v4/projects/200/debian_distributions', headers: token => ({ 'job-token': token, ...json }), body: '{"codename":"sid"}' },
  { method: 'GET', path: '/api/v4/projects/acme%2Flib/debian_distributions/sid/key.asc', headers: token => ({ 'job-token': token }) },
  { method: 'PUT', path: '/api/v4/projects/200/debian_distributions/sid', headers: token => ({ 'job-token': token, ...json }), body: '{"suite":"unstable"}' },
  { method: 'DELETE', path: '/api/v4/projects/200/debian_distributions/sid', headers: token => ({ 'job-token': token }) },
  { method: 'GET', path: '/api/v4/projects/200/packages/rubygems/gems/app-1.0.0.gem', headers: token => ({ authorization: token }) },
  { method: 'GET', path: '/api/v4/projects/200/packages/rubygems/api/v1/dependencies?gems=app', headers: token => ({ authorization: token }) },
  { method: 'POST', path: '/api/v4/projects/200/packages/rubygems/api/v1/gems', headers: token => ({ authorization: token, 'content-type': 'application/octet-stream' }), body: 'gem' }
]

const send$ = (g: TestGate, route: typeof ROUTES[number], token: string): ReturnType<typeof send> =>
  send(g.url, route.method, route.path, route.headers(token), route.body)

test('an allowlisted job reaches them, its token forwarded where GitLab reads it', async t => {
  const g = await startTestGate(t)
  await assertForwardedWithToken(g, ROUTES, (route, token) => send$(g, route, token), (seen, route) => route.path.includes('/rubygems/') ? seen.headers.authorization : seen.headers['job-token'])
})

test('a job outside the allowlist is refused with GitLab\'s message; a fine-grained entry as on routes without policies', async t => {
  const g = await startTestGate(t)
  await assertRefusedOutsideAndFineGrained(g, ROUTES, (route, token) => send$(g, route, token))
})

test('the package rules hold: Debian distributions are Debian packages, gems are RubyGems packages', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { debian: { write: 'maintainer' }, rubygems: { read: false, write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  for (const route of ROUTES) {
    const res = await send$(g, route, TOKENS.web)
    const allowed = route.method === 'GET' && route.path.includes('debian_distributions')
    assert.equal(res.status, allowed ? 200 : 403, `${route.method} ${route.path}: ${res.text}`)
    if (!allowed) assert.match(res.json().code, /^PACKAGE_(MAINTAINER_ONLY|READ_DISABLED)$/)
  }
})

test('a group\'s distributions name no project: left to GitLab with the token, or refused when told to', async t => {
  const path = '/api/v4/groups/10/-/debian_distributions/sid'
  const deferred = await startTestGate(t)
  const res = await send(deferred.url, 'GET', path, { 'job-token': TOKENS.tools })
  assert.equal(res.status, 200, res.text)
  assert.equal(deferred.seen.at(-1)?.headers['job-token'], TOKENS.tools)
  const strict = await startTestGate(t, { GATE_UNRESOLVED_PROJECT: 'deny' })
  const refused = await send(strict.url, 'DELETE', path, { 'job-token': TOKENS.tools })
  assert.equal(refused.status, 403, refused.text)
  assert.equal(refused.json().code, 'PROJECT_NOT_IN_URL')
  assert.equal(strict.seen.length, 0)
})
