// A job outside the allowlist of a public or internal project with public pipelines was let
// through to its job artifacts (GET /projects/:id/jobs/artifacts/:ref_name/raw/*artifact_path
// lists the repository and builds features), the public pipelines taken to give the read. They
// give read_build; the handler then authorizes read_job_artifacts on the build it finds
// (authorize_read_job_artifacts!), which Ci::BuildPolicy keeps to developer_access unless that
// build's artifacts are public (`artifacts:access`, `artifacts:public`). ProjectPolicy takes every
// role from such a job, so GitLab refuses it artifacts kept to developers, but by its own copy of
// the allowlist, which goes stale once the gate owns it: where that copy still listed the job,
// GitLab gave it its user's role and the artifacts with it. The gate cannot see a build's
// artifacts access, so it refuses job artifacts to jobs outside the allowlist.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const lastDecision = (g: TestGate): Record<string, unknown> | undefined => g.logs.filter(l => l.msg === 'decision').at(-1)
const ARTIFACT = '/api/v4/projects/%s/jobs/artifacts/main/raw/out.txt?job=build'

for (const visibility of ['public', 'internal'] as const) {
  test(`a job outside the allowlist of ${visibility === 'public' ? 'a public' : 'an internal'} project gets none of its job artifacts`, async (t) => {
    const g = await startTestGate(t)
    // other/tools (300): every feature enabled, an allowlist without acme/app (100).
    g.gitlab.projects.get(300)!.visibility = visibility
    const before = g.seen.length
    const res = await send(g.url, 'GET', ARTIFACT.replace('%s', '300'), { 'job-token': TOKENS.app })
    assert.equal(res.status, 403, res.text)
    assert.equal(res.json().code, 'NOT_ALLOWLISTED')
    assert.equal(res.json().message, '403 Forbidden - Authentication by CI/CD job token not allowed from app to tools.')
    assert.equal(lastDecision(g)?.reason, 'NOT_ALLOWLISTED')
    assert.equal(g.seen.length, before, 'the upstream never saw it')
  })
}

test('a job the allowlist names reads a public project\'s job artifacts as GitLab decides by its role', async (t) => {
  const g = await startTestGate(t)
  // acme/lib (200) lists acme/app (100) with read_packages only: its features open the route.
  g.gitlab.projects.get(200)!.visibility = 'public'
  const res = await send(g.url, 'GET', ARTIFACT.replace('%s', '200'), { 'job-token': TOKENS.app })
  assert.equal(res.status, 200, res.text)
  assert.equal(lastDecision(g)?.reason, 'PUBLIC_PROJECT_FEATURES')
  const own = await send(g.url, 'GET', ARTIFACT.replace('%s', '300'), { 'job-token': TOKENS.tools })
  assert.equal(own.status, 200, 'self access')
})
