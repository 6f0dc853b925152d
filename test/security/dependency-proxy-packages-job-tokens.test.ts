// Finding: GitLab's dependency proxy for packages (`/projects/:id/dependency_proxy/packages/maven/
// *path/:file_name`, `.../npm/*package_name/-/*file_name`: ee/lib/api/dependency_proxy/packages/)
// takes job tokens through `authenticate_with` (Maven: the Job-Token header or Basic under
// gitlab-ci-token; npm: the last word of Authorization) and finds the project with find_project!
// (allowlist, then policies: none). The catalog lacked it, so the gate stripped a Maven job's token
// (GitLab answered 401) and answered an npm job's 401 itself. It is in the catalog now, decided as
// the other authenticate_with routes, as reads of the Maven and npm package rules.
// A file GitLab caches from the upstream is uploaded by Workhorse straight to Puma, never through
// the gate, so the write rules do not reach the proxy (docs/gitlab-rules.md).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN } from '../helpers/admin-gate.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const basic = (token: string): string => 'Basic ' + Buffer.from(`gitlab-ci-token:${token}`).toString('base64')
const MAVEN = '/api/v4/projects/200/dependency_proxy/packages/maven/com/acme/app/1.0/app-1.0.pom'
const NPM = '/api/v4/projects/acme%2Flib/dependency_proxy/packages/npm/@acme/app/-/app-1.0.0.tgz'
// acme/lib (200): acme/platform/app (100) has a fine-grained entry with read_packages; every other
// acme job (acme/platform/web, 600) has default permissions; other/tools (300) is not allowlisted.
const ROUTES: ReadonlyArray<{ path: string, header: string, value: (token: string) => string, format: string }> = [
  { path: MAVEN, header: 'job-token', value: token => token, format: 'maven' },
  { path: MAVEN, header: 'authorization', value: basic, format: 'maven' },
  { path: NPM, header: 'authorization', value: token => `Bearer ${token}`, format: 'npm' }
]

const send$ = (g: TestGate, route: typeof ROUTES[number], token: string): ReturnType<typeof send> =>
  send(g.url, 'GET', route.path, { [route.header]: route.value(token) })

test('an allowlisted job reaches the dependency proxy, its token forwarded', async t => {
  const g = await startTestGate(t)
  for (const route of ROUTES) {
    const res = await send$(g, route, TOKENS.web)
    assert.equal(res.status, 200, `${route.path} (${route.header}): ${res.text}`)
    const seen = g.seen.at(-1)!
    assert.equal(`${seen.method} ${seen.url}`, `GET ${route.path}`)
    assert.equal(seen.headers[route.header], route.value(TOKENS.web), `${route.path} (${route.header}): the token is not stripped`)
  }
  assert.equal(g.seen.length, ROUTES.length)
})

test('a job outside the allowlist is refused with GitLab\'s message; a fine-grained entry as on routes without policies', async t => {
  const g = await startTestGate(t)
  for (const route of ROUTES) {
    const outside = await send$(g, route, TOKENS.tools)
    assert.equal(outside.status, 403, `${route.path} (${route.header}): ${outside.text}`)
    assert.equal(outside.json().code, 'NOT_ALLOWLISTED')
    assert.equal(outside.json().message, '403 Forbidden - Authentication by CI/CD job token not allowed from tools to lib.')
    const fineGrained = await send$(g, route, TOKENS.app)
    assert.equal(fineGrained.status, 403, `${route.path} (${route.header}): ${fineGrained.text}`)
    assert.equal(fineGrained.json().code, 'NO_POLICIES_FOR_ENDPOINT')
    assert.equal(fineGrained.json().message, '403 Forbidden - This action is unauthorized for CI/CD job tokens.')
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})

test('the package rules hold: the proxy reads the format\'s packages', async t => {
  for (const format of ['maven', 'npm']) {
    const g = await adminGate(t)
    const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
      JSON.stringify({ package_registry: { [format]: { read: false, write: 'maintainer' } } }))
    assert.equal(patch.status, 200, patch.text)
    for (const route of ROUTES) {
      const res = await send$(g, route, TOKENS.web)
      assert.equal(res.status, route.format === format ? 403 : 200, `${format}: ${route.path} (${route.header}): ${res.text}`)
      if (route.format === format) assert.equal(res.json().code, 'PACKAGE_READ_DISABLED')
    }
  }
})

test('the write rules do not reach the proxy: only a read rule keeps job tokens from it', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { maven: { write: 'maintainer' }, npm: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const upload = await send(g.url, 'PUT', '/api/v4/projects/200/packages/maven/com/acme/app/1.0/app-1.0.pom', { 'job-token': TOKENS.web }, '<project/>')
  assert.equal(upload.status, 403, upload.text)
  assert.equal(upload.json().code, 'PACKAGE_MAINTAINER_ONLY')
  for (const route of ROUTES) {
    const res = await send$(g, route, TOKENS.web)
    assert.equal(res.status, 200, `${route.path} (${route.header}): ${res.text}`)
  }
  assert.equal(g.seen.length, ROUTES.length)
})
