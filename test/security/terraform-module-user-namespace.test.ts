// The Terraform module registry's namespace routes (`/packages/terraform/modules/v1/:module_namespace/...`)
// find their namespace with find_namespace (lib/api/terraform/modules/v1/namespace_packages.rb),
// a user's personal namespace as well as a group, and serve the module from the projects in it
// (Packages::GroupPackagesFinder over the namespace's self_and_descendants). The gate listed the
// projects through GitLab's groups API, which knows no user namespace: it took `alice` for no
// group and deferred the read unchecked, so a personal project's `terraform_module` `read: false`
// did not hold there. A namespace that is no group is now uncertain: job tokens are refused, and
// the project's own module routes (/projects/:id/packages/terraform/modules/...) stay open.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })

test('a Terraform module read through a user\'s namespace is not deferred unchecked', async t => {
  const g = await startTestGate(t)
  g.gitlab.projects.set(950, { id: 950, pathWithNamespace: 'alice/infra', namespace: { id: 9000, kind: 'user', fullPath: 'alice', parentId: null } })
  g.gitlab.userNamespaces.add('alice')
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, projectId: 950, projectPath: 'alice/infra', packageRules: { terraform_module: { read: false, write: 'maintainer' } } })
  for (const path of [
    '/api/v4/packages/terraform/modules/v1/alice/infra/aws/1.0.0/file',
    '/api/v4/packages/terraform/modules/v1/alice/infra/aws/versions',
    '/api/v4/packages/terraform/modules/v1/ALICE/infra/aws/download'
  ]) {
    const res = await send(g.url, 'GET', path, job(TOKENS.web))
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'PACKAGE_PROJECT_UNCERTAIN', path)
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')

  // A namespace GitLab does not have is no project, as before; so is a group's read without rules.
  for (const path of ['/api/v4/packages/terraform/modules/v1/nobody/infra/aws/versions', '/api/v4/packages/terraform/modules/v1/other/tools/aws/versions']) {
    const res = await send(g.url, 'GET', path, job(TOKENS.web))
    assert.equal(res.status, 200, `${path}: ${res.text}`)
    assert.equal(g.seen.at(-1)!.url, path)
  }
})
