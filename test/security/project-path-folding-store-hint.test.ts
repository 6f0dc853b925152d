// Finding: where GitLab shows the gate no project at a /projects/:id path (no service token: the
// lookup is anonymous and sees public projects only; or a service token that sees less), the
// gate falls back on its store's path index, a hint that may only add a check: with
// GATE_UNKNOWN_PROJECT=allow a path the store holds a project under is not let through, and the
// user roles stage checks that project's package rules for credentials it cannot ask GitLab
// about (deploy tokens). The index was read with the stored-path grammar, ASCII only, while
// GitLab compares LOWER() of both sides, which under most collations folds U+212A KELVIN SIGN
// onto "k" (and with glibc U+0130 onto "i"): `acme/<Kelvin>it` is acme/kit to GitLab but named
// nothing to the index. A job token then passed a configured private project's empty allowlist
// and package rules, and a deploy token wrote where the project keeps writes to Maintainers.
// The index is now asked for every stored path LOWER() may match the segment to.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { loadCatalog } from '../../src/catalog/load.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { loadConfig } from '../../src/config.ts'
import { createGate } from '../../src/gate/server.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import type { JobIdentity } from '../../src/identity/types.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const file = (id: string): string => `/api/v4/projects/${id}/packages/generic/tool/1.0/tool.bin`
/** acme/kit spelled with U+212A KELVIN SIGN, with U+0130, and both upper-cased. */
const FOLDED = ['acme%2F%E2%84%AAit', 'acme%2Fk%C4%B0t', 'ACME%2F%E2%84%AA%C4%B0T']

/** A gate without the service token (identities as the JWT resolver answers them) in front of a GitLab where acme/kit (200) is private. */
async function gateWithoutServiceToken (t: TestContext, env: Record<string, string> = {}): Promise<{ url: string, seen: string[] }> {
  const seen: string[] = []
  const gitlab = await startFakeGitlab({
    anonymousPathLookups: true,
    projects: [
      { id: 200, pathWithNamespace: 'acme/kit', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } },
      { id: 300, pathWithNamespace: 'other/tools', namespace: { id: 20, kind: 'group', fullPath: 'other', parentId: null } }
    ],
    fallback: (req, res) => { req.resume(); req.on('end', () => { seen.push(`${req.method} ${req.url}`); res.end('{}') }) }
  })
  t.after(() => gitlab.close())
  const store = await createMemoryStore()
  const settings = createInstanceSettings()
  const policies = createPolicyIndex(loadCatalog().policies)
  // acme/kit lists nobody and keeps generic writes to Maintainers.
  await store.put(validateProjectGrants({ projectId: 200, projectPath: 'acme/kit', inboundEnabled: true, entries: [], packageRules: { generic: { write: 'maintainer' } } }, { settings, policies }))
  // A job of other/tools, as the JWT resolver reads it from the signed token.
  const identity: JobIdentity = { jobId: 3, jobProjectId: 300, jobProjectPath: 'other/tools', ancestorGroupIds: [20], userId: 8 }
  const resolver = { resolve: async () => identity, close: async () => {} }
  const config = loadConfig({ GATE_UPSTREAM_URL: gitlab.url, GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0', GATE_UNRESOLVED_PROJECT: 'defer', GATE_INSTANCE_TOKEN_PREFIX: '', ...env })
  const gate = createGate(config, { store, resolver, logger: pino({ level: 'silent' }) })
  await gate.listen()
  t.after(() => gate.close(0))
  return { url: `http://127.0.0.1:${gate.address().port}`, seen }
}

test('with GATE_UNKNOWN_PROJECT=allow, a path GitLab folds onto a configured project is not let through as unknown', async t => {
  const g = await gateWithoutServiceToken(t, { GATE_UNKNOWN_PROJECT: 'allow' })
  for (const id of ['acme%2Fkit', ...FOLDED]) {
    for (const [method, body] of [['GET', undefined], ['PUT', 'bytes']] as const) {
      const res = await send(g.url, method, file(id), { 'job-token': TOKENS.tools }, body)
      assert.equal(res.status, 403, `${method} ${id}: ${res.text}`)
      assert.equal(res.json().code, 'UNKNOWN_PROJECT')
    }
  }
  assert.deepEqual(g.seen, [], 'nothing refused reached GitLab')
  // A path the store holds nothing under still passes, as the setting asks.
  const unknown = await send(g.url, 'GET', file('acme%2Fnew%E2%84%AA'), { 'job-token': TOKENS.tools })
  assert.equal(unknown.status, 200, unknown.text)
  assert.deepEqual(g.seen, [`GET ${file('acme%2Fnew%E2%84%AA')}`])
})

test('a deploy token writing to a path GitLab folds onto a Maintainer-only project is refused', async t => {
  const g = await gateWithoutServiceToken(t)
  for (const id of ['acme%2Fkit', ...FOLDED]) {
    const res = await send(g.url, 'PUT', file(id), { 'deploy-token': 'gldt-some-deploy-token' }, 'bytes')
    assert.equal(res.status, 403, `${id}: ${res.text}`)
    assert.equal(res.json().code, 'PACKAGE_MAINTAINER_ONLY')
  }
  assert.deepEqual(g.seen, [], 'no refused write reached GitLab')
  // Reads keep to GitLab's roles.
  const read = await send(g.url, 'GET', file(FOLDED[0]!), { 'deploy-token': 'gldt-some-deploy-token' })
  assert.equal(read.status, 200, read.text)
})
