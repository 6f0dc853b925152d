// A job's ancestor groups come from the identity's namespace cache, which kept a project's groups
// for 10 minutes with no setting to shorten it: after the job's project moved to another group,
// the allowlist entries of its old group kept letting its jobs in for that long, while GitLab
// decides on the groups the project is in now. The cache now keeps them
// GATE_NAMESPACE_CACHE_TTL_MS (60 s by default).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from '../../src/config.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

// acme/lib (200) lets every job of group acme (10) in with default permissions: the job project
// acme/platform/web (600) has no entry of its own there.
const RELEASES = '/api/v4/projects/200/releases'

test('a job project moved out of a group is no longer let in by that group\'s entry once the namespace cache expires', async t => {
  const gate = await startTestGate(t, { GATE_IDENTITY_CACHE_TTL_MS: '100', GATE_NAMESPACE_CACHE_TTL_MS: '300' })
  const before = await fetch(gate.url + RELEASES, { headers: { 'job-token': TOKENS.web } })
  assert.equal(before.status, 200, 'the acme group entry lets the job read releases')
  await before.arrayBuffer()

  // In GitLab: project 600 moves to group other (20).
  const web = gate.gitlab.projects.get(600)!
  gate.gitlab.projects.set(600, { ...web, pathWithNamespace: 'other/web', namespace: { id: 20, kind: 'group', fullPath: 'other', parentId: null } })
  await new Promise(resolve => setTimeout(resolve, 500))

  const after = await fetch(gate.url + RELEASES, { headers: { 'job-token': TOKENS.web } })
  const body = await after.json() as Record<string, unknown>
  assert.equal(after.status, 403, JSON.stringify(body))
  assert.equal(body.code, 'NOT_ALLOWLISTED')
  // acme/registry (700) lets every job of group other in: the groups are the ones the project is in now.
  const registry = await fetch(`${gate.url}/api/v4/projects/700/packages`, { headers: { 'job-token': TOKENS.web } })
  assert.equal(registry.status, 200)
  await registry.arrayBuffer()
})

test('GATE_NAMESPACE_CACHE_TTL_MS: 60 s by default, at least 1 ms', () => {
  const base = { GATE_UPSTREAM_URL: 'http://gitlab.example' }
  assert.equal(loadConfig(base).namespaceCacheTtlMs, 60_000)
  assert.equal(loadConfig({ ...base, GATE_NAMESPACE_CACHE_TTL_MS: '600000' }).namespaceCacheTtlMs, 600_000)
  assert.throws(() => loadConfig({ ...base, GATE_NAMESPACE_CACHE_TTL_MS: '0' }), /GATE_NAMESPACE_CACHE_TTL_MS/)
})
