// The least-privilege report counts what GitLab carried out on the accessed project. GitLab's
// Conan `ping`, `users/authenticate` and `users/check_credentials` under /projects/:id look up no
// project (lib/api/concerns/packages/conan_endpoints.rb): GitLab answers them 200 whatever the
// id, and reads nothing of it. Recorded, a job kept an entry it never used in the report, with
// its requests and its job project listed, by pinging the project.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { usageReport } from '../../src/usage/report.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const policies = createPolicyIndex(loadCatalog().policies)

test('usage: Conan routes that look up no project are not recorded as the project\'s usage', async (t) => {
  const g = await startTestGate(t)
  await g.store.put(validateProjectGrants({
    projectId: 300,
    projectPath: 'other/tools',
    inboundEnabled: true,
    entries: [{ targetType: 'group', targetId: 10, defaultPermissions: true, jobTokenPolicies: [], addedBy: null, createdAt: '2026-01-01T00:00:00Z' }]
  }, { settings: createInstanceSettings(), policies }))
  const job = { 'job-token': TOKENS.app }
  g.respond = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('{}')
  }
  for (const path of ['v1/ping', 'v1/users/authenticate', 'v1/users/check_credentials', 'v2/users/authenticate', 'v2/users/check_credentials']) {
    assert.equal((await send(g.url, 'GET', `/api/v4/projects/300/packages/conan/${path}`, job)).status, 200, path)
  }
  await g.gate.usage.flush()
  let entry = (await usageReport(g.store, 300, { sinceMs: Date.now() - 3_600_000, policies })).entries[0]!
  assert.equal(entry.requests, 0, 'GitLab read nothing of project 300')
  assert.deepEqual(entry.job_projects, [])

  // A Conan request GitLab serves from the project is counted.
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/300/packages/conan/v1/conans/pkg/1.0/_/_/digest', job)).status, 200)
  await g.gate.usage.flush()
  entry = (await usageReport(g.store, 300, { sinceMs: Date.now() - 3_600_000, policies })).entries[0]!
  assert.equal(entry.requests, 1)
  assert.deepEqual(entry.used_policies, { read_packages: 1 })
})
