// Finding: GitLab's RPM registry (`/projects/:id/packages/rpm/...`: lib/api/rpm_project_packages.rb)
// takes job tokens through `authenticate_with` (Basic with the user gitlab-ci-token) and finds the
// project with find_project! (authorized_user_project: allowlist, then policies: none). The
// catalog lacked it, so the gate stripped such a token and GitLab answered 401 where it would
// have served an allowlisted job the repository metadata. It is in the catalog now, decided as
// the other authenticate_with routes, with RPM's package rules.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN } from '../helpers/admin-gate.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { assertForwardedWithToken, assertRefusedOutsideAndFineGrained } from '../helpers/job-token-routes.ts'

// acme/lib (200): acme/platform/app (100) has a fine-grained entry with read_packages; every other
// acme job (acme/platform/web, 600) has default permissions; other/tools (300) is not allowlisted.
const ROUTES: ReadonlyArray<{ method: string, path: string, body?: string }> = [
  { method: 'GET', path: '/api/v4/projects/200/packages/rpm/repodata/repomd.xml' },
  { method: 'GET', path: '/api/v4/projects/acme%2Flib/packages/rpm/17/app-1.0-1.x86_64.rpm' },
  { method: 'POST', path: '/api/v4/projects/200/packages/rpm/authorize' },
  { method: 'POST', path: '/api/v4/projects/200/packages/rpm', body: 'rpm' }
]

const basic = (token: string): string => 'Basic ' + Buffer.from(`gitlab-ci-token:${token}`).toString('base64')
const send$ = (g: TestGate, route: typeof ROUTES[number], token: string): ReturnType<typeof send> =>
  send(g.url, route.method, route.path, { authorization: basic(token) }, route.body)

test('an allowlisted job reaches the RPM registry, its token forwarded', async t => {
  const g = await startTestGate(t)
  await assertForwardedWithToken(g, ROUTES, (route, token) => send$(g, route, token), seen => Buffer.from(String(seen.headers.authorization).replace(/^Basic /, ''), 'base64').toString().replace(/^gitlab-ci-token:/, ''))
})

test('a job outside the allowlist is refused with GitLab\'s message; a fine-grained entry as on routes without policies', async t => {
  const g = await startTestGate(t)
  await assertRefusedOutsideAndFineGrained(g, ROUTES, (route, token) => send$(g, route, token))
})

test('the package rules hold: `rpm` is a format of the rules', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { rpm: { read: false, write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  for (const route of ROUTES) {
    const res = await send$(g, route, TOKENS.web)
    assert.equal(res.status, 403, `${route.method} ${route.path}: ${res.text}`)
    assert.equal(res.json().code, route.method === 'GET' ? 'PACKAGE_READ_DISABLED' : 'PACKAGE_MAINTAINER_ONLY')
  }
})
