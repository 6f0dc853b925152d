// Finding: a gate without the service token (GitLab shows it public projects only) names a
// private project in a `/projects/:id` path by the store's path index, or by what the caller's own
// credential is shown. A deploy token is shown nothing (GitLab's API signs no user in with one,
// in its header or as Basic), and a stored project renamed in GitLab since its last write claims
// only its old path: a deploy token writing by the new path met none of the project's
// Maintainer-only package rules and reached GitLab, which took the upload. Such a write is now
// refused (PROJECT_LOOKUP_UNVERIFIED), as a job token naming that path is, unless
// GATE_UNKNOWN_PROJECT=allow leaves unknown projects to GitLab.
//
// Finding: the users' package rules checked one credential per text, so a token sent in two
// places was asked of GitLab in one of them only. A Developer's personal access token sent as
// PRIVATE-TOKEN and again as `Deploy-Token` was kept as a deploy token: by the renamed path, with
// GATE_UNKNOWN_PROJECT=allow, the token was never asked and the upload went to GitLab, which found
// no deploy token of that text and took the personal access token, uploading as the Developer
// where the project keeps writes to Maintainers. Each way a credential is asked of GitLab (its
// header and its text) is a credential of its own now.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { startStoreGate } from '../helpers/store-gate.ts'

const upload = (id: string): string => `/api/v4/projects/${id}/packages/generic/x/1.0.0/x.bin`
const basic = (user: string, secret: string): string => 'Basic ' + Buffer.from(`${user}:${secret}`).toString('base64')
const DEPLOY_TOKENS: ReadonlyArray<Record<string, string>> = [
  { 'deploy-token': 'gldt-deploy' },
  { authorization: basic('gitlab+deploy-token-1', 'gldt-deploy') }
]

/** acme/kit (200), stored with Maintainer-only generic writes, renamed acme/kit2 in GitLab since. */
async function gate (t: TestContext, env: Record<string, string> = {}): Promise<{ url: string, seen: string[] }> {
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
    env
  })
}

const put = async (url: string, id: string, headers: Record<string, string>): Promise<{ status: number, body: Record<string, unknown> }> => {
  const res = await fetch(url + upload(id), { method: 'PUT', headers, body: 'bytes' })
  return { status: res.status, body: JSON.parse(await res.text()) as Record<string, unknown> }
}

test('a deploy token writing by a path the gate cannot name is refused', async t => {
  const g = await gate(t)
  for (const headers of DEPLOY_TOKENS) {
    const renamed = await put(g.url, 'acme%2Fkit2', headers)
    assert.equal(renamed.status, 403, JSON.stringify(renamed.body))
    assert.equal(renamed.body.code, 'PROJECT_LOOKUP_UNVERIFIED')
    // By its id, or its old path, the project's rules hold as before.
    for (const id of ['200', 'acme%2Fkit']) {
      const named = await put(g.url, id, headers)
      assert.equal(named.status, 403, `${id}: ${JSON.stringify(named.body)}`)
      assert.equal(named.body.code, 'PACKAGE_MAINTAINER_ONLY', id)
    }
  }
  assert.deepEqual(g.seen, [])
})

test('users are shown the project by their own credential, as before', async t => {
  const g = await gate(t)
  const developer = await put(g.url, 'acme%2Fkit2', { 'private-token': 'glpat-developer' })
  assert.equal(developer.status, 403, JSON.stringify(developer.body))
  assert.equal(developer.body.code, 'PACKAGE_MAINTAINER_ONLY')
  const maintainer = await put(g.url, 'acme%2Fkit2', { 'private-token': 'glpat-maintainer' })
  assert.equal(maintainer.status, 200, JSON.stringify(maintainer.body))
  assert.deepEqual(g.seen, [upload('acme%2Fkit2')])
})

test('GATE_UNKNOWN_PROJECT=allow leaves a path no stored project claims to GitLab', async t => {
  const g = await gate(t, { GATE_UNKNOWN_PROJECT: 'allow' })
  const res = await put(g.url, 'acme%2Fkit2', DEPLOY_TOKENS[0]!)
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.deepEqual(g.seen, [upload('acme%2Fkit2')])
})

test('a Developer\'s token sent again as a deploy token is still asked of GitLab', async t => {
  const g = await gate(t, { GATE_UNKNOWN_PROJECT: 'allow' })
  for (const headers of [
    [['Private-Token', 'glpat-developer'], ['Deploy-Token', 'glpat-developer']],
    [['Deploy-Token', 'glpat-developer'], ['Private-Token', 'glpat-developer']],
    [['Authorization', 'Bearer glpat-developer'], ['Deploy-Token', 'glpat-developer']]
  ]) {
    const res = await fetch(g.url + upload('acme%2Fkit2'), { method: 'PUT', headers: headers as Array<[string, string]>, body: 'bytes' })
    const text = await res.text()
    assert.equal(res.status, 403, `${JSON.stringify(headers)}: ${text}`)
    assert.equal((JSON.parse(text) as { code: string }).code, 'PACKAGE_MAINTAINER_ONLY')
  }
  assert.deepEqual(g.seen, [])
  // A Maintainer's token, in one place, passes as before.
  const maintainer = await put(g.url, 'acme%2Fkit2', { 'private-token': 'glpat-maintainer' })
  assert.equal(maintainer.status, 200, JSON.stringify(maintainer.body))
})
