// Regression: with a service token that cannot read every project, a Maven group download was
// decided on the newest package that token was shown.
//
// GitLab serves the newest package of that path among the projects the job's user can read
// (Packages::Maven::PackageFinder), whatever the gate's token sees. A narrower token is shown a
// shorter package list: a newer package in a project it cannot read was missing from it, and the
// gate decided on an older package's project, which let the job in, while GitLab served the
// newer one. A "newest" such a token finds is no more certain than a "none": refused.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, pkg, projectsGate } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const JAR = '/api/v4/groups/acme/-/packages/maven/com/acme/shared/1.0/shared-1.0.jar'

test('a Maven group download is refused when the service token may not see the newest package', async t => {
  const g = await projectsGate(t)
  // acme/registry (700) lets other/tools' job read; acme/lib (200) does not, and holds the newer package.
  g.gitlab.packages.push(
    pkg('com/acme/shared', '1.0', 'maven', 700, '2026-01-01T00:00:00Z'),
    pkg('com/acme/shared', '1.0', 'maven', 200, '2026-02-01T00:00:00Z')
  )
  g.gitlab.serviceRole = 'user'
  g.gitlab.serviceHidden.add(200)
  const res = await send(g.url, 'GET', JAR, job(TOKENS.tools))
  assert.equal(res.status, 403)
  assert.equal(res.json().code, 'PROJECT_LOOKUP_UNVERIFIED')
  assert.equal(forwarded(g, JAR), 0, 'nothing reached GitLab')
  assert.deepEqual([(await decisionOf(g, JAR)).reason, (await decisionOf(g, JAR)).stage], ['PROJECT_LOOKUP_UNVERIFIED', 'resolve_grants'])
})

test('an administrator or auditor token decides Maven group downloads on the newest package', async t => {
  for (const role of ['admin', 'auditor'] as const) {
    const g = await projectsGate(t)
    g.gitlab.serviceRole = role
    g.gitlab.packages.push(
      pkg('com/acme/shared', '1.0', 'maven', 700, '2026-01-01T00:00:00Z'),
      pkg('com/acme/shared', '1.0', 'maven', 200, '2026-02-01T00:00:00Z')
    )
    assert.equal((await send(g.url, 'GET', JAR, job(TOKENS.tools))).json().code, 'NOT_ALLOWLISTED', role)
    assert.equal((await decisionOf(g, JAR)).accessed_project_id, 200, role)
    assert.equal((await send(g.url, 'GET', JAR, job(TOKENS.lib))).status, 200, role)
  }
})
