// Routes that declare no job token policies (Helm, Debian and the other `authenticate_with`
// registries) are allowed by a default-permissions entry and refused by every fine-grained one
// (NO_POLICIES_FOR_ENDPOINT). The least-privilege report recorded such requests with no policy,
// and its `suggested_job_token_policies` ("the fine-grained setting that would have allowed every
// request seen") left them out: an admin who applied it to a default-permissions entry broke every
// job that used those routes. The report now counts them per entry
// (`requests_without_policies`), which no fine-grained setting allows.
// acme/lib (200) lets the acme group (10) in with default permissions; acme/platform/web (600) is
// under it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { ADMIN, adminGate, usageReport } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

test('usage: requests on routes without policies are counted apart, since no fine-grained entry allows them', async (t) => {
  const g = await adminGate(t)
  const op = { 'private-token': ADMIN }
  const job = { authorization: `Basic ${Buffer.from(`gitlab-ci-token:${TOKENS.web}`).toString('base64')}` }
  const helm = '/api/v4/projects/200/packages/helm/stable/index.yaml'
  assert.equal((await send(g.url, 'GET', helm, job)).status, 200)
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/packages', job)).status, 200)
  assert.deepEqual(g.logs.filter(l => l.msg === 'decision').map(l => l.reason), ['DEFAULT_PERMISSIONS', 'DEFAULT_PERMISSIONS'])

  const report = await usageReport(g, 200)
  const group = report.entries.find((e: { target_type: string, target_id: number }) => e.target_type === 'group' && e.target_id === 10)
  assert.equal(group.requests, 2)
  assert.deepEqual(group.used_policies, { read_packages: 1 })
  assert.deepEqual(group.suggested_job_token_policies, ['read_packages'])
  assert.equal(group.requests_without_policies, 1, 'the Helm read, which read_packages does not allow')

  // What the suggestion alone would do: the Helm read is refused.
  const narrowed = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_scope/groups_allowlist/10', { ...op, 'content-type': 'application/json' }, JSON.stringify({ default_permissions: false, job_token_policies: ['read_packages'] }))
  assert.equal(narrowed.status, 200, narrowed.text)
  const refused = await send(g.url, 'GET', helm, job)
  assert.equal(refused.status, 403)
  assert.equal(refused.json().code, 'NO_POLICIES_FOR_ENDPOINT')
})
