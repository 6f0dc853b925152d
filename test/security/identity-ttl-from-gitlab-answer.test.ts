// Finding: a resolved job token was kept GATE_IDENTITY_CACHE_TTL_MS from the moment its
// resolution ended, not from when GitLab said the job was running. Resolving a token is a /job
// call, then the job project's and its groups' lookups (one call per group level the namespace
// cache does not hold, each bounded by GATE_IDENTITY_TIMEOUT_MS): with a slow GitLab and a
// deep group chain, which a project owner chooses, that is up to 22 calls of up to 5 s each,
// added to the time a finished job's token is still let through. A value's TTL now runs from
// the start of the load it came from.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

const RELEASES = '/api/v4/projects/100/releases'

test('a token resolved more slowly than the identity TTL is not kept past the TTL of GitLab\'s answer', async t => {
  const gate = await startTestGate(t, { GATE_IDENTITY_CACHE_TTL_MS: '400' })
  // The /job answer, then the project's and its root group's lookups: 3 x 300 ms, over the TTL.
  gate.gitlab.delayMs = 300
  const first = await fetch(gate.url + RELEASES, { headers: { 'job-token': TOKENS.app } })
  assert.equal(first.status, 200, await first.text())
  assert.equal(gate.gitlab.calls.job, 1)
  assert.ok(gate.gitlab.calls.project + gate.gitlab.calls.group >= 2)

  // The job ends: GitLab refuses its token from now on, and the gate asks again.
  gate.gitlab.delayMs = 0
  gate.gitlab.jobs.set(TOKENS.app, { id: 1, status: 'success', projectId: 100, userId: 7 })
  const after = await fetch(gate.url + RELEASES, { headers: { 'job-token': TOKENS.app } })
  assert.equal(after.status, 401)
  assert.equal((await after.json() as Record<string, unknown>).code, 'TOKEN_JOB_NOT_RUNNING')
  assert.equal(gate.gitlab.calls.job, 2)
})
