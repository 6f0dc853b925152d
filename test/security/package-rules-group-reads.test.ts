// Finding: a project's `read: false` for a package format did not hold on the group and instance
// routes whose project no lookup names. PyPI's group files and simple index, and the Terraform
// module registry's namespace routes (`/packages/terraform/modules/v1/:module_namespace/...`),
// were deferred to GitLab unchecked, and GitLab, which knows nothing of the gate's package rules,
// served that project's packages to any job it let in, the project's own included. Such a read is
// now refused where any project under the group keeps the format from job tokens.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { PackageRules } from '../../src/grants/model.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const SHA = 'a'.repeat(64)
const job = (token: string): Record<string, string> => ({ 'job-token': token })

// acme/lib (200) is in group acme (10); acme/platform (11) holds acme/platform/app and web.
async function withRules (g: TestGate, rules: PackageRules): Promise<void> {
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, packageRules: rules })
}

const lastDecision = (g: TestGate): Record<string, unknown> | undefined => g.logs.filter(l => l.msg === 'decision').at(-1)

test('a format kept from job tokens is not read through its group\'s routes', async t => {
  const g = await startTestGate(t)
  await withRules(g, { pypi: { read: false, write: 'maintainer' }, terraform_module: { read: false, write: 'maintainer' } })
  const refused = [
    `/api/v4/groups/10/-/packages/pypi/files/${SHA}/lib-1.0.tar.gz`,
    '/api/v4/groups/acme/-/packages/pypi/simple/lib',
    '/api/v4/groups/ACME/-/packages/pypi/simple',
    '/api/v4/packages/terraform/modules/v1/acme/lib/aws/1.0.0/file',
    '/api/v4/packages/terraform/modules/v1/acme/lib/aws/1.0.0/download',
    '/api/v4/packages/terraform/modules/v1/acme/lib/aws/versions'
  ]
  // Another acme job with default permissions, and acme/lib's own job: the rules bind both.
  for (const token of [TOKENS.web, TOKENS.lib]) {
    for (const path of refused) {
      const res = await send(g.url, 'GET', path, job(token))
      assert.equal(res.status, 403, `${path}: ${res.text}`)
      assert.equal(res.json().code, 'PACKAGE_READ_DISABLED', path)
      assert.match(res.json().message, /through this group/)
    }
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')

  // Groups without such a project, and users, are deferred to GitLab as before.
  const passed: Array<[string, Record<string, string>]> = [
    [`/api/v4/groups/11/-/packages/pypi/files/${SHA}/app-1.0.tar.gz`, job(TOKENS.web)],
    ['/api/v4/groups/other/-/packages/pypi/simple/tools', job(TOKENS.web)],
    ['/api/v4/packages/terraform/modules/v1/other/tools/aws/1.0.0/file', job(TOKENS.web)],
    [`/api/v4/groups/10/-/packages/pypi/files/${SHA}/lib-1.0.tar.gz`, { 'private-token': 'glpat-someone' }]
  ]
  for (const [path, headers] of passed) {
    const res = await send(g.url, 'GET', path, headers)
    assert.equal(res.status, 200, `${path}: ${res.text}`)
    assert.equal(g.seen.at(-1)!.url, path)
  }
  assert.equal(lastDecision(g)?.decision, 'no_job_token')

  // Other formats of the same group stay open, and so does the format once the rule is gone.
  await withRules(g, { npm: { read: false, write: 'maintainer' } })
  const res = await send(g.url, 'GET', '/api/v4/groups/10/-/packages/pypi/simple/lib', job(TOKENS.web))
  assert.equal(res.status, 200, res.text)
  assert.equal(lastDecision(g)?.reason, 'PROJECT_NOT_IN_URL')
})

test('a group with more projects than the gate reads is uncertain, not deferred', async t => {
  const g = await startTestGate(t)
  for (let id = 900; id < 912; id++) {
    g.gitlab.projects.set(id, { id, pathWithNamespace: `acme/p${id}`, namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } })
  }
  g.gitlab.maxPerPage = 1
  const res = await send(g.url, 'GET', '/api/v4/groups/10/-/packages/pypi/simple/lib', job(TOKENS.web))
  assert.equal(res.status, 403, res.text)
  assert.equal(res.json().code, 'PACKAGE_PROJECT_UNCERTAIN')
  assert.equal(g.seen.length, 0)
})
