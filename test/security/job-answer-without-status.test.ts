// An answer of `GET /api/v4/job` that says nothing of the job's status (JSON from something in
// front of GitLab, an answer cut to other fields) makes no sense: it is a lookup failure, 502, as
// other missing fields are, and not kept. It was taken for a job that is not running, a verdict on
// the token, remembered for the negative TTL: a running job's token stayed refused for 10 s after
// GitLab answered properly again.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

// acme/lib (200) lets acme/platform/app (100) read packages.
const PACKAGES = '/api/v4/projects/200/packages'

for (const status of [undefined, null, 7, { state: 'running' }]) {
  test(`a /job answer whose status is ${JSON.stringify(status) ?? 'missing'} is a lookup failure, not a verdict on the token`, async t => {
    const gate = await startTestGate(t)
    const job = gate.gitlab.jobs.get(TOKENS.app)!
    gate.gitlab.jobs.set(TOKENS.app, { ...job, status: status as unknown as string })

    const res = await fetch(gate.url + PACKAGES, { headers: { 'job-token': TOKENS.app } })
    const body = await res.json() as Record<string, unknown>
    assert.equal(res.status, 502, JSON.stringify(body))
    assert.equal(body.code, 'IDENTITY_LOOKUP_FAILED')

    // GitLab answers properly again: the next request is decided on it, within the negative TTL.
    gate.gitlab.jobs.set(TOKENS.app, { ...job, status: 'running' })
    const again = await fetch(gate.url + PACKAGES, { headers: { 'job-token': TOKENS.app } })
    assert.equal(again.status, 200, await again.text())
    assert.equal(gate.gitlab.calls.job, 2)
  })
}

test('a job GitLab says is not running is still a verdict, kept for the negative TTL', async t => {
  const gate = await startTestGate(t)
  const job = gate.gitlab.jobs.get(TOKENS.app)!
  gate.gitlab.jobs.set(TOKENS.app, { ...job, status: 'success' })
  const res = await fetch(gate.url + PACKAGES, { headers: { 'job-token': TOKENS.app } })
  assert.equal(res.status, 401)
  assert.equal((await res.json() as Record<string, unknown>).code, 'TOKEN_JOB_NOT_RUNNING')
  gate.gitlab.jobs.set(TOKENS.app, { ...job, status: 'running' })
  const again = await fetch(gate.url + PACKAGES, { headers: { 'job-token': TOKENS.app } })
  assert.equal(again.status, 401, 'remembered')
  await again.arrayBuffer()
  assert.equal(gate.gitlab.calls.job, 1)
})
