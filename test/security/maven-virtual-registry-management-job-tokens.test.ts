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
import { assertDeferredToGitlab, assertRefusedWithoutProject } from '../helpers/job-token-routes.ts'

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
  await assertDeferredToGitlab(g, ROUTES)
  const query = `/api/v4/virtual_registries/packages/maven/upstreams/4/test?job_token=${TOKENS.web}`
  assert.equal((await send(g.url, 'GET', query)).status, 200)
  assert.equal(g.seen.at(-1)?.url, query, 'a token in the query is forwarded as sent')
})

test('with GATE_UNRESOLVED_PROJECT=deny they are refused: no project to decide on', async t => {
  const g = await startTestGate(t, { GATE_UNRESOLVED_PROJECT: 'deny' })
  await assertRefusedWithoutProject(g, ROUTES)
})
