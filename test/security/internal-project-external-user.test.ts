// GitLab's external users see no internal project they are not let into otherwise: ProjectPolicy's
// `internal_access` is false for them, so for a job of such a user outside an internal project's
// allowlist `project_allowed_for_job_token` fails and GitLab refuses everything (`prevent_all`),
// the package reads and release asset links the project's features give other jobs included. It
// decides so by its own copy of the allowlist, which goes stale once the gate owns it, and where
// that copy still listed the job, GitLab gave it its user's role. The gate let such a job through
// to those reads as any other; it asks GitLab whether the job's user is external now.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const READS = ['/api/v4/projects/300/packages/7/package_files/9/download', '/api/v4/projects/other%2Ftools/packages/generic/kit/1.0/kit.tgz', '/api/v4/projects/300/releases/v1/assets/links']
const lastDecision = (g: TestGate): Record<string, unknown> | undefined => g.logs.filter(l => l.msg === 'decision').at(-1)

async function internalTools (t: Parameters<typeof startTestGate>[0], env: Record<string, string> = {}): Promise<TestGate> {
  const g = await startTestGate(t, env)
  // other/tools (300): internal, every feature enabled, an allowlist without acme/platform/app (100).
  g.gitlab.projects.get(300)!.visibility = 'internal'
  return g
}

test('a job of an external user outside an internal project\'s allowlist reads nothing there', async t => {
  const g = await internalTools(t)
  g.gitlab.externalUsers.add(7) // the app job's user
  for (const path of READS) {
    const before = g.seen.length
    const res = await send(g.url, 'GET', path, { 'job-token': TOKENS.app })
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'NOT_ALLOWLISTED', path)
    assert.equal(res.json().message, '403 Forbidden - Authentication by CI/CD job token not allowed from app to tools.')
    assert.equal(g.seen.length, before, 'the upstream never saw it')
  }
  assert.equal(g.gitlab.calls.job_user, 1, 'the user is asked once, then kept')
  // The same job on a public project: GitLab's public_project gives it the features' reads.
  const pub = await startTestGate(t)
  pub.gitlab.projects.get(300)!.visibility = 'public'
  pub.gitlab.externalUsers.add(7)
  const res = await send(pub.url, 'GET', READS[0]!, { 'job-token': TOKENS.app })
  assert.equal(res.status, 200, res.text)
  assert.equal(lastDecision(pub)?.reason, 'PUBLIC_PROJECT_FEATURES')
  assert.equal(pub.gitlab.calls.job_user, 0, 'not asked for a public project')
})

test('a job of a user who is not external still reads an internal project\'s package registry and asset links', async t => {
  const g = await internalTools(t)
  for (const path of READS) {
    const res = await send(g.url, 'GET', path, { 'job-token': TOKENS.app })
    assert.equal(res.status, 200, `${path}: ${res.text}`)
    assert.equal(lastDecision(g)?.reason, 'PUBLIC_PROJECT_FEATURES', path)
  }
  assert.equal(g.gitlab.calls.job_user, 1)
})

test('a job allowlisted on an internal project is not asked about', async t => {
  const g = await internalTools(t)
  g.gitlab.externalUsers.add(7)
  // A fine-grained entry without read_packages: GitLab's copy lists the job, so internal_access is not needed.
  await g.store.put({ projectId: 300, projectPath: 'other/tools', inboundEnabled: true, entries: [{ targetType: 'project', targetId: 100, defaultPermissions: false, jobTokenPolicies: ['read_environments'], addedBy: { id: 1 }, createdAt: '2026-01-01T00:00:00Z' }] })
  const res = await send(g.url, 'GET', READS[0]!, { 'job-token': TOKENS.app })
  assert.equal(res.status, 200, res.text)
  assert.equal(lastDecision(g)?.reason, 'PUBLIC_PROJECT_FEATURES')
  assert.equal(g.gitlab.calls.job_user, 0)
})

test('a service token that is not shown whether a user is external refuses; GitLab failing is a 503', async t => {
  const narrow = await internalTools(t)
  narrow.gitlab.serviceRole = 'admin_without_admin_mode'
  const res = await send(narrow.url, 'GET', READS[0]!, { 'job-token': TOKENS.app })
  assert.equal(res.status, 403, res.text)
  assert.equal(res.json().code, 'JOB_USER_UNVERIFIED')

  const down = await internalTools(t)
  down.gitlab.failWith.job_user = 502
  const failed = await send(down.url, 'GET', READS[0]!, { 'job-token': TOKENS.app })
  assert.equal(failed.status, 503, failed.text)
  assert.equal(failed.json().code, 'PROJECT_LOOKUP_UNAVAILABLE')
})
