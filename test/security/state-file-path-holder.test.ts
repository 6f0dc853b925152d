// Finding: the memory store's state file did not say which project held a path that several
// documents claim (a project renamed in GitLab keeps its old path in its document until it is
// written again, and the project GitLab gave that path takes the index entry on its write). On
// load the first document in the file, by project id, took the entry: after a restart the path
// index named the project whose path was old news. Without the service token, the package rules'
// role check asks the index which project a path names: a deploy token writing to the path then
// met the old project's rules, not those of the project GitLab routes the path to, and passed
// Maintainer-only package rules. The file now keeps the holder of such paths (`paths`).

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { type ProjectGrants } from '../../src/grants/model.ts'
import { grantsDoc } from '../helpers/grants-doc.ts'
import type { GrantStore } from '../../src/grants/store.ts'
import { startStoreGate } from '../helpers/store-gate.ts'

const upload = (id: string): string => `/api/v4/projects/${id}/packages/generic/x/1.0.0/x.bin`
const doc = (projectId: number, projectPath: string, extra: Partial<ProjectGrants> = {}): ProjectGrants => grantsDoc(projectId, projectPath, [], extra)

/** A gate without the service token (GitLab shows it public projects only). */
const gate = async (t: TestContext, store: GrantStore): Promise<{ url: string, seen: string[] }> => await startStoreGate(t, store)

test('a path two documents claim goes back after a restart to the project that held it', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-holder-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'grants.json')
  const first = await createMemoryStore({ file })
  // 200 was acme/kit when last written; GitLab has since given the path to 300, written after.
  await first.put(doc(200, 'acme/kit'))
  await first.put(doc(300, 'acme/old'))
  await first.put(doc(300, 'acme/kit', { packageRules: { generic: { write: 'maintainer' } } }))
  assert.equal(await first.resolvePath('acme/kit'), 300)
  await first.close()
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).paths, { 'acme/kit': 300 })

  const store = await createMemoryStore({ file })
  assert.equal(await store.resolvePath('acme/kit'), 300)
  const g = await gate(t, store)
  const res = await fetch(g.url + upload('acme%2Fkit'), { method: 'PUT', headers: { 'deploy-token': 'gldt-deploy' }, body: 'bytes' })
  const body = await res.json() as Record<string, unknown>
  assert.equal(res.status, 403, JSON.stringify(body))
  assert.equal(body.code, 'PACKAGE_MAINTAINER_ONLY')
  assert.deepEqual(g.seen, [])

  // Once 300 moves on, the file says nothing of the path, and 200's document takes it on load.
  await store.put(doc(300, 'acme/new'))
  await store.close()
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).paths, undefined)
  assert.equal(await (await createMemoryStore({ file })).resolvePath('acme/kit'), 200)
})
