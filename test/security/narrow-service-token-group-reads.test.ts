// Regression: with a service token that cannot read every project, a read of a group's packages
// that names no project (PyPI's group index, the Terraform module registry's namespaces, NuGet,
// Composer and Debian group metadata, npm's group audits, a Maven virtual registry's local groups) was checked against the package rules of the projects that
// token was shown.
//
// GitLab serves such a read from the packages of every project under the group that the job's
// user can read, whatever the gate's token sees. A narrower token is shown a shorter list of the
// group's projects: a project it cannot read, which keeps the format from job tokens
// (`read: false`), was missing from it, and the read was forwarded, while GitLab served that
// project's packages to the job. A list such a token is shown is no more certain than the "none"
// it is refused on: refused, 403 PROJECT_LOOKUP_UNVERIFIED, as a Maven group download is.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const READS = [
  '/api/v4/groups/acme/-/packages/pypi/simple/lib',
  '/api/v4/groups/10/-/packages/pypi/simple',
  '/api/v4/packages/terraform/modules/v1/acme/lib/aws/versions',
  // Registry 6 serves from the group acme (a local upstream).
  '/api/v4/virtual_registries/packages/maven/6/com/acme/lib/1.0/lib-1.0.jar'
]

/** acme/lib (200, in group acme) keeps PyPI, Terraform module and Maven reads from job tokens. */
async function world (t: Parameters<typeof startTestGate>[0], role: 'admin' | 'auditor' | 'user'): Promise<TestGate> {
  const g = await startTestGate(t)
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, packageRules: { pypi: { read: false, write: 'maintainer' }, terraform_module: { read: false, write: 'maintainer' }, maven: { read: false, write: 'maintainer' } } })
  g.gitlab.virtualRegistries.set(6, [{ id: 3, name: 'acme', upstream_type: 'local', local_group_id: 10 }])
  g.gitlab.serviceRole = role
  return g
}

const lastDecision = (g: TestGate): Record<string, unknown> | undefined => g.logs.filter(l => l.msg === 'decision').at(-1)

test('a group read is refused when the service token may not see every project under the group', async t => {
  const g = await world(t, 'user')
  // The token cannot read acme/lib: the group's project list it is shown leaves it out.
  g.gitlab.serviceHidden.add(200)
  for (const path of READS) {
    const res = await send(g.url, 'GET', path, job(TOKENS.web))
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'PROJECT_LOOKUP_UNVERIFIED', path)
    assert.match(res.json().message, /every project under this group/)
    assert.deepEqual([lastDecision(g)?.reason, lastDecision(g)?.stage], ['PROJECT_LOOKUP_UNVERIFIED', 'resolve_grants'], path)
  }
  // A group in which the token happens to see every project is no different: it cannot tell.
  g.gitlab.serviceHidden.delete(200)
  const other = '/api/v4/groups/other/-/packages/pypi/simple/tools'
  assert.equal((await send(g.url, 'GET', other, job(TOKENS.web))).json().code, 'PROJECT_LOOKUP_UNVERIFIED')
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})

test('an administrator or auditor token checks every project under the group', async t => {
  for (const role of ['admin', 'auditor'] as const) {
    const g = await world(t, role)
    for (const path of READS) {
      const res = await send(g.url, 'GET', path, job(TOKENS.web))
      assert.equal(res.json().code, 'PACKAGE_READ_DISABLED', `${role} ${path}`)
    }
    const other = '/api/v4/groups/other/-/packages/pypi/simple/tools'
    assert.equal((await send(g.url, 'GET', other, job(TOKENS.web))).status, 200, role)
    assert.equal(lastDecision(g)?.reason, 'PROJECT_NOT_IN_URL', role)
    assert.equal(g.seen.length, 1, role)
  }
})
