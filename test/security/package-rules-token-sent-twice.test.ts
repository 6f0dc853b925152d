// Finding: the users' package rules checked one credential per text, so a token sent in two
// places was asked of GitLab in one of them only. A Developer's personal access token sent as
// PRIVATE-TOKEN and again as `Deploy-Token` was kept as a deploy token, which GitLab's API shows
// no project: writing by a renamed project's new path (which GitLab shows the gate no project at,
// without the service token), with GATE_UNKNOWN_PROJECT=allow, the token was never asked and the
// upload went to GitLab, which found no deploy token of that text and took the personal access
// token, uploading as the Developer where the project keeps writes to Maintainers. Each way a
// credential is asked of GitLab (its header and its text) is a credential of its own now.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { startStoreGate } from '../helpers/store-gate.ts'

const UPLOAD = '/api/v4/projects/acme%2Fkit2/packages/generic/x/1.0.0/x.bin'

/** acme/kit (200), stored with Maintainer-only generic writes, renamed acme/kit2 in GitLab since. */
async function gate (t: TestContext): Promise<{ url: string, seen: string[] }> {
  const store = await createMemoryStore()
  await store.put(validateProjectGrants({
    projectId: 200, projectPath: 'acme/kit', inboundEnabled: true, entries: [], packageRules: { generic: { write: 'maintainer' } }
  }, { settings: createInstanceSettings() }))
  return await startStoreGate(t, store, {
    projects: [{ id: 200, pathWithNamespace: 'acme/kit2', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } }],
    users: {
      'glpat-maintainer': { id: 1, username: 'maintainer', access: { 200: 40 } },
      'glpat-developer': { id: 2, username: 'developer', access: { 200: 30 } }
    },
    deployTokens: ['gldt-deploy'],
    env: { GATE_UNKNOWN_PROJECT: 'allow' }
  })
}

test('a Developer\'s token sent again as a deploy token is still asked of GitLab', async t => {
  const g = await gate(t)
  for (const headers of [
    [['Private-Token', 'glpat-developer'], ['Deploy-Token', 'glpat-developer']],
    [['Deploy-Token', 'glpat-developer'], ['Private-Token', 'glpat-developer']],
    [['Authorization', 'Bearer glpat-developer'], ['Deploy-Token', 'glpat-developer']]
  ]) {
    const res = await fetch(g.url + UPLOAD, { method: 'PUT', headers: headers as Array<[string, string]>, body: 'bytes' })
    const text = await res.text()
    assert.equal(res.status, 403, `${JSON.stringify(headers)}: ${text}`)
    assert.equal((JSON.parse(text) as { code: string }).code, 'PACKAGE_MAINTAINER_ONLY')
  }
  assert.deepEqual(g.seen, [])
  // A Maintainer's token, in one place, passes as before.
  const maintainer = await fetch(g.url + UPLOAD, { method: 'PUT', headers: { 'private-token': 'glpat-maintainer' }, body: 'bytes' })
  assert.equal(maintainer.status, 200, await maintainer.text())
})
