// GET /jobs/:id/artifacts: the accessed project is job :id's. No REST call maps a job id to
// its project, so the gate looks for the job in the token's own pipeline (jobs and bridges,
// retried ones included): found there, it is the job's own project; otherwise deferred.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, projectsGate } from './world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })

test("another job of the token's pipeline is the job's own project; a job elsewhere stays deferred (or denied)", async t => {
  const g = await projectsGate(t)
  // The app job (id 1) runs in pipeline 1001 of acme/platform/app (100); the list spans pages.
  g.gitlab.maxPerPage = 2
  g.gitlab.pipelines.set(1001, { projectId: 100, jobs: [1, 40, 41, 42, 43, 50], bridges: [51] })
  for (const id of [50, 51]) {
    const path = `/api/v4/jobs/${id}/artifacts`
    assert.equal((await send(g.url, 'GET', path, job(TOKENS.app))).status, 200, path)
    const log = await decisionOf(g, path)
    assert.deepEqual([log.decision, log.reason, log.accessed_project_id], ['allow', 'SELF_ACCESS', 100], path)
  }
  const other = '/api/v4/jobs/99/artifacts'
  assert.equal((await send(g.url, 'GET', other, job(TOKENS.app))).status, 200)
  assert.deepEqual([(await decisionOf(g, other)).decision, (await decisionOf(g, other)).reason], ['deferred', 'PROJECT_NOT_IN_URL'])
  // The pipeline was listed once.
  assert.equal(g.gitlab.calls.pipeline, 3 + 1, 'jobs on 3 pages of 2, bridges on 1')

  const denying = await projectsGate(t, { GATE_UNRESOLVED_PROJECT: 'deny' })
  assert.equal((await send(denying.url, 'GET', other, job(TOKENS.app))).json().code, 'PROJECT_NOT_IN_URL')
})

test('job artifacts: GitLab failing is a 503', async t => {
  const g = await projectsGate(t)
  assert.equal((await send(g.url, 'GET', '/api/v4/job', job(TOKENS.app))).status, 200)
  g.gitlab.failWith.pipeline = 500
  const res = await send(g.url, 'GET', '/api/v4/jobs/50/artifacts', job(TOKENS.app))
  assert.equal(res.status, 503)
  assert.equal(res.json().code, 'PROJECT_LOOKUP_UNAVAILABLE')
})
