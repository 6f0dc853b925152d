// A job outside a public project's allowlist was let through to the project's pipelines, merge
// requests, commits and issues (the routes list features, all enabled), and to its job artifacts
// whatever its public pipelines setting, leaving the read to GitLab's endpoint. GitLab's
// ProjectPolicy gives such a job none of those reads (only read_package, read_container_image,
// read_commit_status, read_release and read_environment by feature; read_build only through public
// pipelines), so GitLab refuses them, but only by its own copy of the allowlist, which goes stale
// once the gate owns it: where it still lists the job (an entry removed through the gate), GitLab
// gave the job its user's role, and with it the pipelines, confidential issues and non-public
// artifacts the allowlist no longer lets it read. The gate decides those reads itself now.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const lastDecision = (g: TestGate): Record<string, unknown> | undefined => g.logs.filter(l => l.msg === 'decision').at(-1)

test('a job outside a public project\'s allowlist reads only what GitLab gives such a job by feature', async (t) => {
  const g = await startTestGate(t)
  // other/tools (300): public, every feature enabled, an allowlist without acme/app (100).
  g.gitlab.projects.get(300)!.visibility = 'public'
  const cases: Array<{ name: string, path: string, status: number, reason: string }> = [
    { name: 'pipelines (read_pipeline: by role only)', path: '/projects/300/pipelines', status: 403, reason: 'NOT_ALLOWLISTED' },
    { name: 'one pipeline', path: '/projects/300/pipelines/7', status: 403, reason: 'NOT_ALLOWLISTED' },
    { name: 'a pipeline\'s jobs (found through the pipeline)', path: '/projects/300/pipelines/7/jobs', status: 403, reason: 'NOT_ALLOWLISTED' },
    { name: 'merge requests', path: '/projects/300/merge_requests/1', status: 403, reason: 'NOT_ALLOWLISTED' },
    { name: 'a commit', path: '/projects/300/repository/commits/main', status: 403, reason: 'NOT_ALLOWLISTED' },
    { name: 'issues (confidential ones by role)', path: '/projects/300/issues', status: 403, reason: 'NOT_ALLOWLISTED' },
    // Still open, as GitLab opens them by feature.
    { name: 'a release\'s asset links', path: '/projects/300/releases/v1.0/assets/links', status: 200, reason: 'PUBLIC_PROJECT_FEATURES' },
    { name: 'packages', path: '/projects/300/packages/generic/tool/1.0/tool.tar.gz', status: 200, reason: 'PUBLIC_PROJECT_FEATURES' }
  ]
  for (const c of cases) {
    await t.test(c.name, async () => {
      const before = g.seen.length
      const res = await send(g.url, 'GET', `/api/v4${c.path}`, { 'job-token': TOKENS.app })
      assert.equal(res.status, c.status, res.text)
      assert.equal(lastDecision(g)?.reason, c.reason)
      if (c.status === 200) {
        assert.equal(g.seen.length, before + 1, 'forwarded')
        return
      }
      assert.equal(g.seen.length, before, 'the upstream never saw it')
      assert.equal(res.json().code, c.reason)
      assert.equal(res.json().message, '403 Forbidden - Authentication by CI/CD job token not allowed from app to tools.')
    })
  }
})

