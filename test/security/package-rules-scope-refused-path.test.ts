// Finding: a gate that GitLab shows a project by path only through the caller's own credential
// (no service token, or one that sees less) asked GitLab `GET /projects/:path` with a user's
// token, and took a 403 for "no project there". GitLab answers 403 (`insufficient_scope`) to a
// personal access token without the `api` or `read_api` scope (a `read_user`, `read_registry` or
// `write_registry` token), while the package routes that declare `authenticate_with` (Helm,
// NuGet, Debian, RubyGems, RPM, Cargo...) resolve the token without checking any scope
// (lib/gitlab/api_authentication/token_resolver.rb) and let its holder upload as a Developer. A
// Developer's such token uploading a chart by a path no stored project claims (a project renamed
// since its last write) met none of the project's Maintainer-only rules, and GitLab took the
// upload. A credential GitLab's API refuses to show the path to now cannot show which project it
// writes to, as a deploy token cannot: refused (PROJECT_LOOKUP_UNVERIFIED), unless
// GATE_UNKNOWN_PROJECT=allow leaves unknown projects to GitLab.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { startStoreGate } from '../helpers/store-gate.ts'

const charts = (id: string): string => `/api/v4/projects/${id}/packages/helm/api/stable/charts`
const basic = (user: string, secret: string): string => 'Basic ' + Buffer.from(`${user}:${secret}`).toString('base64')

/** acme/kit (200), stored with Maintainer-only Helm writes, renamed acme/kit2 in GitLab since. */
async function gate (t: TestContext, env: Record<string, string> = {}): Promise<{ url: string, seen: string[] }> {
  const store = await createMemoryStore()
  await store.put(validateProjectGrants({
    projectId: 200, projectPath: 'acme/kit', inboundEnabled: true, entries: [], packageRules: { helm: { write: 'maintainer' } }
  }, { settings: createInstanceSettings() }))
  return await startStoreGate(t, store, {
    projects: [{ id: 200, pathWithNamespace: 'acme/kit2', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } }],
    users: {
      'glpat-maintainer': { id: 1, username: 'maintainer', access: { 200: 40 } },
      'glpat-developer': { id: 2, username: 'developer', access: { 200: 30 } },
      'glpat-developer-read-user': { id: 2, username: 'developer', access: { 200: 30 }, projectsRefused: true }
    },
    env
  })
}

const post = async (url: string, id: string, token: string): Promise<{ status: number, body: Record<string, unknown> }> => {
  const res = await fetch(url + charts(id), { method: 'POST', headers: { authorization: basic('developer', token), 'content-type': 'application/octet-stream' }, body: 'chart' })
  return { status: res.status, body: JSON.parse(await res.text()) as Record<string, unknown> }
}

test('a token GitLab refuses to show the path to (403) cannot write by a path the gate cannot name', async t => {
  const g = await gate(t)
  const refused = await post(g.url, 'acme%2Fkit2', 'glpat-developer-read-user')
  assert.equal(refused.status, 403, JSON.stringify(refused.body))
  assert.equal(refused.body.code, 'PROJECT_LOOKUP_UNVERIFIED')
  // By the project's id, or the path a stored project claims, its rules hold as before.
  for (const id of ['200', 'acme%2Fkit']) {
    const named = await post(g.url, id, 'glpat-developer-read-user')
    assert.equal(named.status, 403, `${id}: ${JSON.stringify(named.body)}`)
    assert.equal(named.body.code, 'PACKAGE_MAINTAINER_ONLY', id)
  }
  assert.deepEqual(g.seen, [])
})

test('tokens GitLab shows the project to are checked at it, as before', async t => {
  const g = await gate(t)
  const developer = await post(g.url, 'acme%2Fkit2', 'glpat-developer')
  assert.equal(developer.status, 403, JSON.stringify(developer.body))
  assert.equal(developer.body.code, 'PACKAGE_MAINTAINER_ONLY')
  const maintainer = await post(g.url, 'acme%2Fkit2', 'glpat-maintainer')
  assert.equal(maintainer.status, 200, JSON.stringify(maintainer.body))
  assert.deepEqual(g.seen, [charts('acme%2Fkit2')])
})

test('GATE_UNKNOWN_PROJECT=allow leaves such a write to GitLab', async t => {
  const g = await gate(t, { GATE_UNKNOWN_PROJECT: 'allow' })
  const res = await post(g.url, 'acme%2Fkit2', 'glpat-developer-read-user')
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.deepEqual(g.seen, [charts('acme%2Fkit2')])
})
