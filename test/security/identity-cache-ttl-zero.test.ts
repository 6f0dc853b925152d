// Finding: GATE_IDENTITY_CACHE_TTL_MS bounds how long a finished job's token is still let
// through (GitLab refuses it as soon as the job ends). The setting accepted 0, the value an
// operator sets to have GitLab asked on every request, but a gate configured so did not start:
// the token cache threw a TypeError ("cache ttlMs must be positive"). 0 now means what it says:
// no resolved token is kept, so a finished job's token is refused on its next request.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

const RELEASES = '/api/v4/projects/100/releases'

test('GATE_IDENTITY_CACHE_TTL_MS=0: the gate starts, and a finished job is refused on its next request', async t => {
  const gate = await startTestGate(t, { GATE_IDENTITY_CACHE_TTL_MS: '0' })
  const first = await fetch(gate.url + RELEASES, { headers: { 'job-token': TOKENS.app } })
  assert.equal(first.status, 200, await first.text())
  const again = await fetch(gate.url + RELEASES, { headers: { 'job-token': TOKENS.app } })
  assert.equal(again.status, 200, await again.text())
  assert.equal(gate.gitlab.calls.job, 2, 'GitLab is asked on every request')
  assert.equal(gate.gitlab.calls.project, 1, 'the namespace cache still holds the project')

  gate.gitlab.jobs.set(TOKENS.app, { id: 1, status: 'success', projectId: 100, userId: 7 })
  const after = await fetch(gate.url + RELEASES, { headers: { 'job-token': TOKENS.app } })
  assert.equal(after.status, 401)
  assert.equal((await after.json() as Record<string, unknown>).code, 'TOKEN_JOB_NOT_RUNNING')
})
