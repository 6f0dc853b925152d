// Finding: a full path in a /projects/ URL equal to the job project's path was taken as self
// access without asking GitLab which project holds that path now. The job project's path comes
// from the identity's namespace cache (10 minutes), not from the project lookup that
// GATE_PROJECT_LOOKUP_TTL_MS bounds: after the job's project 100 (acme/platform/app) was renamed
// and a new project 800 took acme/platform/app, the job's request to
// /projects/acme%2Fplatform%2Fapp/... was allowed as SELF_ACCESS and forwarded, and GitLab served
// project 800, whose allowlist was never checked (the same request by id 800 was refused).
//
// Now the job's own path is resolved as any other path: GitLab's answer decides which project it is.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

const PATH = '/api/v4/projects/acme%2Fplatform%2Fapp/packages/generic/x/1.0.0/x.bin'

test("a path the job's project had before a rename is the project GitLab routes it to now", async t => {
  // Identity and project lookups short-lived, so only the namespace cache (10 min) remembers the old path.
  const gate = await startTestGate(t, { GATE_IDENTITY_CACHE_TTL_MS: '200', GATE_PROJECT_LOOKUP_TTL_MS: '200' })
  const before = await fetch(gate.url + PATH, { headers: { 'job-token': TOKENS.app } })
  assert.equal(before.status, 200, 'the job reads its own project by path')
  await before.arrayBuffer()

  // In GitLab: 100 becomes acme/platform/app-old; a new project 800 (no allowlist in the gate) takes the path.
  const app = gate.gitlab.projects.get(100)!
  gate.gitlab.projects.set(100, { ...app, pathWithNamespace: 'acme/platform/app-old' })
  gate.gitlab.projects.set(800, { ...app, id: 800, pathWithNamespace: 'acme/platform/app' })
  await new Promise(resolve => setTimeout(resolve, 400))

  gate.seen.length = 0
  const after = await fetch(gate.url + PATH, { headers: { 'job-token': TOKENS.app } })
  const body = await after.json() as Record<string, unknown>
  assert.equal(after.status, 403, JSON.stringify(body))
  assert.equal(body.code, 'UNKNOWN_PROJECT')
  assert.equal(gate.seen.length, 0, 'nothing reached GitLab')
  const line = gate.logs.filter(l => l.msg === 'decision').at(-1)
  assert.equal(line?.accessed_project_id, 800)

  // The job's project under its new path is still self access.
  const own = await fetch(`${gate.url}/api/v4/projects/acme%2Fplatform%2Fapp-old/packages/generic/x/1.0.0/x.bin`, { headers: { 'job-token': TOKENS.app } })
  assert.equal(own.status, 200)
  await own.arrayBuffer()
  assert.equal(gate.logs.filter(l => l.msg === 'decision').at(-1)?.reason, 'SELF_ACCESS')
})
