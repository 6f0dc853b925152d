// Finding: GitLab's Maven virtual registry API grew routes the catalog did not list (a registry's
// update and cache purge, an upstream's cache purge and connection test, a group's upstreams,
// the registry-upstream associations: lib/api/virtual_registries/packages/maven/). They take job
// tokens through `authenticate_with` (the Job-Token header, `job_token` in the query) as the
// registry's other routes do, so the gate stripped the token there and GitLab answered 401. They
// belong to a top-level group, not a project: listed now, they are left to GitLab with the token,
// or refused with GATE_UNRESOLVED_PROJECT=deny, as the other virtual registry routes.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const json = { 'content-type': 'application/json' }
const ROUTES: ReadonlyArray<{ method: string, path: string, body?: string }> = [
  { method: 'PATCH', path: '/api/v4/virtual_registries/packages/maven/registries/3', body: '{"name":"r"}' },
  { method: 'DELETE', path: '/api/v4/virtual_registries/packages/maven/registries/3/cache' },
  { method: 'GET', path: '/api/v4/groups/acme/-/virtual_registries/packages/maven/upstreams' },
  { method: 'POST', path: '/api/v4/groups/10/-/virtual_registries/packages/maven/upstreams/test', body: '{"url":"https://repo.example"}' },
  { method: 'DELETE', path: '/api/v4/virtual_registries/packages/maven/upstreams/4/cache' },
  { method: 'GET', path: '/api/v4/virtual_registries/packages/maven/upstreams/4/test' },
  { method: 'POST', path: '/api/v4/virtual_registries/packages/maven/registry_upstreams', body: '{"registry_id":3,"upstream_id":4}' },
  { method: 'PATCH', path: '/api/v4/virtual_registries/packages/maven/registry_upstreams/5', body: '{"position":2}' },
  { method: 'DELETE', path: '/api/v4/virtual_registries/packages/maven/registry_upstreams/5' }
]

test('a job\'s token reaches GitLab on the Maven virtual registry API, which decides', async t => {
  const g = await startTestGate(t)
  for (const route of ROUTES) {
    for (const token of [TOKENS.web, TOKENS.tools]) {
      const res = await send(g.url, route.method, route.path, { 'job-token': token, ...(route.body !== undefined ? json : {}) }, route.body)
      assert.equal(res.status, 200, `${route.method} ${route.path}: ${res.text}`)
      const seen = g.seen.at(-1)!
      assert.equal(`${seen.method} ${seen.url}`, `${route.method} ${route.path}`)
      assert.equal(seen.headers['job-token'], token, `${route.method} ${route.path}: the token is not stripped`)
    }
  }
  const query = `/api/v4/virtual_registries/packages/maven/upstreams/4/test?job_token=${TOKENS.web}`
  assert.equal((await send(g.url, 'GET', query)).status, 200)
  assert.equal(g.seen.at(-1)?.url, query, 'a token in the query is forwarded as sent')
})

test('with GATE_UNRESOLVED_PROJECT=deny they are refused: no project to decide on', async t => {
  const g = await startTestGate(t, { GATE_UNRESOLVED_PROJECT: 'deny' })
  for (const route of ROUTES) {
    const res = await send(g.url, route.method, route.path, { 'job-token': TOKENS.web, ...(route.body !== undefined ? json : {}) }, route.body)
    assert.equal(res.status, 403, `${route.method} ${route.path}: ${res.text}`)
    assert.equal(res.json().code, 'PROJECT_NOT_IN_URL')
  }
  assert.equal(g.seen.length, 0)
})
