// Finding: the store's path index, which with GATE_UNKNOWN_PROJECT=allow keeps a path GitLab shows
// the gate nothing at from passing while a stored project claims it (and adds that project to the
// package rules' role check), was only asked about paths spelled in ASCII. GitLab compares LOWER()
// of both sides, which folds the Kelvin sign U+212A onto "k" (and, with glibc, U+0130 onto "i"):
// `acme/<Kelvin>it` is acme/kit to GitLab. A gate GitLab shows private projects to not at all (no
// service token) let a job of any project through to acme/kit so spelled, with none of acme/kit's
// rules applied, and a deploy token past its Maintainer-only package rules. The index is now asked
// with those characters folded, as GitLab's database may fold them.

import { after, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createRedisStore } from '../../src/grants/redis-store.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import type { GrantStore } from '../../src/grants/store.ts'
import { startStoreGate } from '../helpers/store-gate.ts'
import { startRedis } from '../helpers/redis.ts'
import { TOKENS } from '../helpers/gate.ts'

const redis = await startRedis({ after })
let prefixes = 0

const upload = (id: string): string => `/api/v4/projects/${id}/packages/generic/x/1.0.0/x.bin`
/** acme/kit spelled with the Kelvin sign, and with U+0130 in place of its "i". */
const FOLDED = ['acme%2F%E2%84%AAit', 'ACME%2F%E2%84%AAIT', 'acme%2Fk%C4%B0t']

/** A gate without the service token (GitLab shows it public projects only), acme/kit stored and private. */
async function gate (t: TestContext, store: GrantStore): Promise<{ url: string, seen: string[] }> {
  await store.put(validateProjectGrants({
    projectId: 200, projectPath: 'acme/kit', inboundEnabled: true, entries: [], packageRules: { generic: { write: 'maintainer' } }
  }, { settings: createInstanceSettings() }))
  return await startStoreGate(t, store, { projects: [{ id: 200, pathWithNamespace: 'acme/kit', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } }], env: { GATE_UNKNOWN_PROJECT: 'allow' } })
}

const stores: Record<string, () => Promise<GrantStore>> = {
  memory: async () => await createMemoryStore(),
  redis: async () => {
    const store = await createRedisStore({ url: redis.url, keyPrefix: `folded${++prefixes}` })
    after(() => store.close())
    return store
  }
}

for (const [kind, open] of Object.entries(stores)) {
  test(`${kind}: a path GitLab folds onto a stored project's is that project's, not an unknown one`, async t => {
    const g = await gate(t, await open())
    for (const id of ['acme%2Fkit', ...FOLDED]) {
      const res = await fetch(g.url + upload(id), { headers: { 'job-token': TOKENS.app } })
      const body = await res.json() as Record<string, unknown>
      assert.equal(res.status, 403, `${id}: ${JSON.stringify(body)}`)
      assert.equal(body.code, 'UNKNOWN_PROJECT', id)
    }
    // A path no stored project claims still passes, as the setting says.
    const other = await fetch(g.url + upload('acme%2Fother'), { headers: { 'job-token': TOKENS.app } })
    assert.equal(other.status, 200)
    await other.arrayBuffer()
    assert.deepEqual(g.seen, [upload('acme%2Fother')])
  })

  test(`${kind}: a deploy token naming the project so keeps to its Maintainer-only package rules`, async t => {
    const g = await gate(t, await open())
    for (const id of ['acme%2Fkit', ...FOLDED]) {
      const res = await fetch(g.url + upload(id), { method: 'PUT', headers: { 'deploy-token': 'gldt-deploy' }, body: 'bytes' })
      const body = await res.json() as Record<string, unknown>
      assert.equal(res.status, 403, `${id}: ${JSON.stringify(body)}`)
      assert.equal(body.code, 'PACKAGE_MAINTAINER_ONLY', id)
    }
    assert.deepEqual(g.seen, [])
  })
}
