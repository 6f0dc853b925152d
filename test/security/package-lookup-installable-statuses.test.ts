// Regression: the npm and Maven group lookups took GitLab's installable packages to be those of
// status `default` or `error`.
//
// GitLab's finders install from Packages::Package::INSTALLABLE_STATUSES: default, hidden and,
// since `npm deprecate` sets a status (recent GitLab), deprecated; never `error`, a package whose
// processing failed (app/models/packages/package.rb; its Maven and npm finder specs). A job
// allowed to publish into one project of the namespace publishes there an npm tarball GitLab
// cannot process: the package, newest of that name, ends in `error`. The gate took it for the
// last package and decided on the job's project, while GitLab acted on the project of the last
// package it installs from: another project's dist-tags moved or deleted. A deprecated newest
// version went the other way: skipped by the gate, still GitLab's last package.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, pkg, projectsGate } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })

// acme/lib (200) does not let other/tools' job in; acme/registry (700) lets it publish.
test('npm dist-tag writes: a newer package in `error` is not GitLab\'s last package, a deprecated one is', async t => {
  const g = await projectsGate(t)
  g.gitlab.packages.push(
    pkg('@acme/shared', '1.0.0', 'npm', 700, '2026-01-01T00:00:00Z'),
    pkg('@acme/shared', '2.0.0', 'npm', 200, '2026-02-01T00:00:00Z'),
    // The job's broken upload: GitLab's npm worker set it to `error`.
    pkg('@acme/shared', '3.0.0', 'npm', 700, '2026-03-01T00:00:00Z', 'error'),
    pkg('@acme/old', '0.5.0', 'npm', 200, '2025-12-01T00:00:00Z'),
    pkg('@acme/old', '1.0.0', 'npm', 700, '2026-01-01T00:00:00Z'),
    // acme/lib's newest version, deprecated: still installed, still GitLab's last package.
    pkg('@acme/old', '2.0.0', 'npm', 200, '2026-02-01T00:00:00Z', 'deprecated')
  )
  for (const name of ['@acme%2fshared', '@acme%2fold']) {
    for (const path of [`/api/v4/packages/npm/-/package/${name}/dist-tags/latest`, `/api/v4/groups/acme/-/packages/npm/-/package/${name}/dist-tags/latest`]) {
      for (const method of ['PUT', 'DELETE'] as const) {
        const res = await send(g.url, method, path, job(TOKENS.tools), method === 'PUT' ? '"2.0.0"' : undefined)
        assert.equal(res.json().code, 'NOT_ALLOWLISTED', `${method} ${path}`)
        assert.equal((await decisionOf(g, path)).accessed_project_id, 200, `${method} ${path}`)
      }
      assert.equal(forwarded(g, path), 0, path)
    }
  }
})

test('Maven group downloads: a newer package in `error` is not the one GitLab serves, a deprecated one is', async t => {
  const g = await projectsGate(t)
  g.gitlab.packages.push(
    pkg('com/acme/shared', '1.0', 'maven', 200, '2026-01-01T00:00:00Z'),
    pkg('com/acme/shared', '1.0', 'maven', 700, '2026-02-01T00:00:00Z', 'error'),
    pkg('com/acme/old', '1.0', 'maven', 700, '2026-01-01T00:00:00Z'),
    pkg('com/acme/old', '1.0', 'maven', 200, '2026-02-01T00:00:00Z', 'deprecated')
  )
  for (const name of ['shared', 'old']) {
    const path = `/api/v4/groups/acme/-/packages/maven/com/acme/${name}/1.0/${name}-1.0.jar`
    const res = await send(g.url, 'GET', path, job(TOKENS.tools))
    assert.equal(res.json().code, 'NOT_ALLOWLISTED', path)
    assert.equal((await decisionOf(g, path)).accessed_project_id, 200, path)
    assert.equal(forwarded(g, path), 0, path)
  }
})
