// Finding: the memory store read GATE_STATE_FILE once, at start, and wrote the whole state over it
// on each change. Two gates on one state file (a second replica, a rollout whose pods overlap, or
// `import-allowlists` run while the gate runs) each kept their own copy: an allowlist entry removed
// through one gate stayed allowed by the other for as long as it ran, and the other's next change,
// whatever it was, wrote its copy over the file, so the removed entry was back for every gate after
// a restart. The store now remembers the file as it last read or wrote it, and looks again before
// every write, every second and on readiness: a file another process wrote makes it refuse every
// read and write (503 GRANTS_STORE_UNAVAILABLE, readiness down) until the gate is restarted.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { grantsDoc as doc } from '../helpers/grants-doc.ts'
import type { GrantStore } from '../../src/grants/store.ts'
import { startStoreGate } from '../helpers/store-gate.ts'
import { TOKENS } from '../helpers/gate.ts'
import { eventually } from '../helpers/eventually.ts'

const ADMIN = 'operator-token-for-the-state-file-test'
const READ = '/api/v4/projects/200/packages/generic/x/1.0.0/x.bin'


/** A state file where acme/lib (200) lets acme/platform/app's jobs (100) in, and other/tools (300) lists nobody. */
async function stateFile (t: TestContext): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-state-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'grants.json')
  const seed = await createMemoryStore({ file })
  await seed.put(doc(200, 'acme/lib', [100]))
  await seed.put(doc(300, 'other/tools', []))
  await seed.close()
  return file
}

async function gateOn (t: TestContext, store: GrantStore): Promise<{ url: string }> {
  t.after(() => store.close())
  return await startStoreGate(t, store, { env: { GATE_ADMIN_TOKEN: ADMIN } })
}

const jobRead = async (url: string): Promise<number> => (await fetch(url + READ, { headers: { 'job-token': TOKENS.app } })).status

const removeEntry = async (url: string): Promise<number> =>
  (await fetch(url + '/api/v4/projects/200/job_token_scope/allowlist/100', { method: 'DELETE', headers: { 'private-token': ADMIN } })).status

const turnScopeOn = async (url: string, project: number): Promise<Response> =>
  await fetch(url + `/api/v4/projects/${project}/job_token_scope`, { method: 'PATCH', headers: { 'private-token': ADMIN, 'content-type': 'application/json' }, body: JSON.stringify({ enabled: true }) })

async function storedEntries (file: string, projectId: number): Promise<number[]> {
  const store = await createMemoryStore({ file })
  try {
    return (await store.get(projectId))?.entries.map(e => e.targetId) ?? []
  } finally {
    await store.close()
  }
}

test('an entry removed through one gate is not allowed by another gate on the same state file', async t => {
  const file = await stateFile(t)
  const one = await gateOn(t, await createMemoryStore({ file }))
  const otherStore = await createMemoryStore({ file })
  const other = await gateOn(t, otherStore)
  assert.equal(await jobRead(one.url), 200)
  assert.equal(await jobRead(other.url), 200)

  assert.equal(await removeEntry(one.url), 204)
  assert.equal(await jobRead(one.url), 403)
  // The other gate no longer decides on its copy: it fails closed, and says so to its readiness probe.
  assert.equal(await eventually(async () => { const status = await jobRead(other.url); return status !== 200 && status }, { message: 'the other gate to stop allowing the removed entry' }), 503)
  const health = await otherStore.health()
  assert.equal(health.ok, false)
  assert.match(health.detail ?? '', /another process/)
  // The gate that wrote keeps working on its own writes.
  assert.equal((await turnScopeOn(one.url, 300)).status, 204)
  assert.equal(await jobRead(one.url), 403)
  assert.equal((await createMemoryStore({ file }).then(async s => { const h = await s.health(); await s.close(); return h })).ok, true)
})

test('a gate does not write its copy over the state file another gate changed', async t => {
  const file = await stateFile(t)
  const one = await gateOn(t, await createMemoryStore({ file }))
  // It does not look at the file on its own before its write: the write itself must.
  const other = await gateOn(t, await createMemoryStore({ file, watchIntervalMs: 3_600_000 }))

  assert.equal(await removeEntry(one.url), 204)
  const write = await turnScopeOn(other.url, 300)
  assert.equal(write.status, 503, await write.text())
  // The removal stands for every gate started on the file.
  assert.deepEqual(await storedEntries(file, 200), [])
  assert.equal(await jobRead(other.url), 503)
})
