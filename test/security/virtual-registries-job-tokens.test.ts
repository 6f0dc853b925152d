// Finding: GitLab's container and npm virtual registry APIs and the virtual registry cleanup
// policies (lib/api/virtual_registries/container/, .../packages/npm/, .../cleanup/) take job tokens
// through the same `authenticate_with` as the Maven virtual registry (the Job-Token header,
// `job_token` in the query: lib/api/concerns/virtual_registries/shared_authentication.rb). The
// catalog listed none of their routes, so the gate stripped the token there and GitLab answered
// 401. They belong to a top-level group, not a project: listed now, they are left to GitLab with
// the token, or refused with GATE_UNRESOLVED_PROJECT=deny, as the Maven virtual registry's routes.
// The container virtual registry's pulls (`/v2/virtual_registries/container/:id/*path`) are a
// Rails controller outside the API, authenticated with the dependency proxy's JWT: no catalog
// route, and a job token there follows GATE_NON_API_JOB_TOKENS.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { assertDeferredToGitlab, assertRefusedWithoutProject } from '../helpers/job-token-routes.ts'

const json = { 'content-type': 'application/json' }
const ROUTES: ReadonlyArray<{ method: string, path: string, body?: string }> = [
  // Container virtual registry: upstreams, registry-upstream associations, cache entries.
  { method: 'GET', path: '/api/v4/groups/acme/-/virtual_registries/container/upstreams' },
  { method: 'POST', path: '/api/v4/groups/10/-/virtual_registries/container/upstreams/test', body: '{"url":"https://registry.example"}' },
  { method: 'GET', path: '/api/v4/virtual_registries/container/registries/3/upstreams' },
  { method: 'POST', path: '/api/v4/virtual_registries/container/registries/3/upstreams', body: '{"url":"https://registry.example","name":"u"}' },
  { method: 'GET', path: '/api/v4/virtual_registries/container/upstreams/4' },
  { method: 'PATCH', path: '/api/v4/virtual_registries/container/upstreams/4', body: '{"name":"u"}' },
  { method: 'DELETE', path: '/api/v4/virtual_registries/container/upstreams/4' },
  { method: 'DELETE', path: '/api/v4/virtual_registries/container/upstreams/4/cache' },
  { method: 'POST', path: '/api/v4/virtual_registries/container/upstreams/4/test', body: '{}' },
  { method: 'POST', path: '/api/v4/virtual_registries/container/registry_upstreams', body: '{"registry_id":3,"upstream_id":4}' },
  { method: 'PATCH', path: '/api/v4/virtual_registries/container/registry_upstreams/5', body: '{"position":2}' },
  { method: 'DELETE', path: '/api/v4/virtual_registries/container/registry_upstreams/5' },
  { method: 'GET', path: '/api/v4/virtual_registries/container/upstreams/4/cache_entries' },
  { method: 'DELETE', path: '/api/v4/virtual_registries/container/cache_entries/MTAgMg==' },
  // Cleanup policies of a top-level group.
  { method: 'GET', path: '/api/v4/groups/10/-/virtual_registries/cleanup/policy' },
  { method: 'POST', path: '/api/v4/groups/10/-/virtual_registries/cleanup/policy', body: '{"enabled":true}' },
  { method: 'PATCH', path: '/api/v4/groups/acme/-/virtual_registries/cleanup/policy', body: '{"cadence":7}' },
  { method: 'DELETE', path: '/api/v4/groups/10/-/virtual_registries/cleanup/policy' },
  // npm virtual registry: registries, registry-upstream associations, remote cache entries.
  { method: 'GET', path: '/api/v4/groups/10/-/virtual_registries/packages/npm/registries' },
  { method: 'POST', path: '/api/v4/groups/acme/-/virtual_registries/packages/npm/registries', body: '{"name":"r"}' },
  { method: 'GET', path: '/api/v4/virtual_registries/packages/npm/registries/3' },
  { method: 'PATCH', path: '/api/v4/virtual_registries/packages/npm/registries/3', body: '{"name":"r"}' },
  { method: 'DELETE', path: '/api/v4/virtual_registries/packages/npm/registries/3' },
  { method: 'DELETE', path: '/api/v4/virtual_registries/packages/npm/registries/3/cache' },
  { method: 'POST', path: '/api/v4/virtual_registries/packages/npm/registry_upstreams', body: '{"registry_id":3,"upstream_id":4}' },
  { method: 'PATCH', path: '/api/v4/virtual_registries/packages/npm/registry_upstreams/5', body: '{"position":2}' },
  { method: 'DELETE', path: '/api/v4/virtual_registries/packages/npm/registry_upstreams/5' },
  { method: 'GET', path: '/api/v4/virtual_registries/packages/npm/remote/upstreams/4/cache_entries' },
  { method: 'DELETE', path: '/api/v4/virtual_registries/packages/npm/remote/cache_entries/MTAgMg==' }
]

test('a job\'s token reaches GitLab on the container and npm virtual registry APIs and the cleanup policies, which decide', async t => {
  const g = await startTestGate(t)
  await assertDeferredToGitlab(g, ROUTES)
  for (const path of ['/api/v4/virtual_registries/container/upstreams/4/cache_entries', '/api/v4/groups/10/-/virtual_registries/cleanup/policy']) {
    const query = `${path}?job_token=${TOKENS.web}`
    assert.equal((await send(g.url, 'GET', query)).status, 200)
    assert.equal(g.seen.at(-1)?.url, query, 'a token in the query is forwarded as sent')
  }
})

test('with GATE_UNRESOLVED_PROJECT=deny they are refused: no project to decide on', async t => {
  const g = await startTestGate(t, { GATE_UNRESOLVED_PROJECT: 'deny' })
  await assertRefusedWithoutProject(g, ROUTES)
})

test('the container virtual registry\'s pulls are outside the API: a job token there follows GATE_NON_API_JOB_TOKENS', async t => {
  const pull = '/v2/virtual_registries/container/3/alpine/manifests/latest'
  const basic = `Basic ${Buffer.from(`gitlab-ci-token:${TOKENS.web}`).toString('base64')}`
  const forward = await startTestGate(t)
  assert.equal((await send(forward.url, 'GET', pull, { authorization: basic })).status, 200)
  assert.equal(forward.seen.at(-1)?.headers.authorization, basic)
  const deny = await startTestGate(t, { GATE_NON_API_JOB_TOKENS: 'deny' })
  const res = await send(deny.url, 'GET', pull, { authorization: basic })
  assert.equal(res.status, 403)
  assert.equal(res.json().code, 'NON_API_JOB_TOKEN')
  assert.equal(deny.seen.length, 0)
})
