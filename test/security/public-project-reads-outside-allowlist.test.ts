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
import { startTestGate } from '../helpers/gate.ts'
import { checkOutsideReads, type OutsideRead } from '../helpers/outside-allowlist.ts'

test('a job outside a public project\'s allowlist reads only what GitLab gives such a job by feature', async (t) => {
  const g = await startTestGate(t)
  // other/tools (300): public, every feature enabled, an allowlist without acme/app (100).
  g.gitlab.projects.get(300)!.visibility = 'public'
  const cases: OutsideRead[] = [
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
  await checkOutsideReads(t, g, cases)
})

