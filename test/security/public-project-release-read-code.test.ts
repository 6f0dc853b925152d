// A job outside a public project's allowlist was let through to one release by its tag, a release
// asset's download and the latest release's permalink (the routes list the repository and releases
// features, both enabled), the read left to GitLab's endpoint. Those handlers authorize read_code
// as well as read_release (lib/api/releases.rb, authorize_read_code!), and ProjectPolicy gives
// read_code (download_code) to such a job only by its user's role, which it takes away: GitLab
// refuses them, but by its own copy of the allowlist, which goes stale once the gate owns it. Where
// that copy still lists the job, GitLab gave it its user's role and answered. The gate refuses them
// now; its asset links need read_release alone, which the feature gives.
//
// The release list was let through too, as it authorizes read_release alone. But its entity
// renders each release's commit, sources and evidences by read_code, its milestones by
// read_milestone and, with `include_html_description`, the description's references by the
// user's own reads (confidential issues' titles), from a cache GitLab keys by the user alone: by
// the job user's role, where GitLab's copy of the allowlist still lists the job. No parameter
// keeps those out, so the list is refused as well.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { checkOutsideReads, type OutsideRead } from '../helpers/outside-allowlist.ts'

test('a job outside a public project\'s allowlist reads no release GitLab finds with read_code', async (t) => {
  const g = await startTestGate(t)
  // other/tools (300): public, every feature enabled, an allowlist without acme/app (100).
  g.gitlab.projects.get(300)!.visibility = 'public'
  const cases: OutsideRead[] = [
    { name: 'one release by its tag', path: '/projects/300/releases/v1.0', status: 403, reason: 'NOT_ALLOWLISTED' },
    { name: 'a release asset\'s download', path: '/projects/300/releases/v1.0/downloads/bin/tool', status: 403, reason: 'NOT_ALLOWLISTED' },
    { name: 'the latest release\'s permalink', path: '/projects/300/releases/permalink/latest', status: 403, reason: 'NOT_ALLOWLISTED' },
    { name: 'the latest release\'s permalink, with a suffix', path: '/projects/300/releases/permalink/latest/downloads/bin/tool', status: 403, reason: 'NOT_ALLOWLISTED' },
    { name: 'the release list', path: '/projects/300/releases', status: 403, reason: 'NOT_ALLOWLISTED' },
    { name: 'the release list, its description rendered', path: '/projects/300/releases?include_html_description=true', status: 403, reason: 'NOT_ALLOWLISTED' },
    // read_release alone: given by the releases feature.
    { name: 'a release\'s asset links', path: '/projects/300/releases/v1.0/assets/links', status: 200, reason: 'PUBLIC_PROJECT_FEATURES' },
    { name: 'one asset link', path: '/projects/300/releases/v1.0/assets/links/1', status: 200, reason: 'PUBLIC_PROJECT_FEATURES' }
  ]
  await checkOutsideReads(t, g, cases)
})

test('an internal project\'s release by its tag is refused to a job outside its allowlist too', async (t) => {
  const g = await startTestGate(t)
  g.gitlab.projects.get(300)!.visibility = 'internal'
  const before = g.seen.length
  const res = await send(g.url, 'GET', '/api/v4/projects/300/releases/v1.0', { 'job-token': TOKENS.app })
  assert.equal(res.status, 403, res.text)
  assert.equal(res.json().code, 'NOT_ALLOWLISTED')
  assert.equal(g.seen.length, before, 'the upstream never saw it')
})
