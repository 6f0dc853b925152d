// Finding: a save replaces the state file by renaming a new file over its name, which replaces that
// name only. A state file with a second name (a hard link: `ln grants.json other.json`) kept the
// old version under every other name: a gate started on one name and a gate (or import-allowlists)
// on another each saw only its own writes, and the look at the file before every write and every
// second found nothing, since the name it looks at is the one it writes. An allowlist entry
// removed through one gate stayed allowed by the other for as long as it ran, and in its file for
// every start after. The memory store now refuses to start on a state file with more than one
// name, and refuses every read and write (503) once its file gains one; a writable token registry
// so too (the start stops; a name gained later makes it answer no registration and refuse
// changes). A symbolic link, as Kubernetes mounts a Secret or ConfigMap, is one name and still works.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { GrantsError } from '../../src/grants/errors.ts'
import { createTokenRegistry } from '../../src/graphql/token-registry.ts'
import { GateError } from '../../src/errors.ts'
import { grantsDoc as doc } from '../helpers/grants-doc.ts'
import { startStoreGate } from '../helpers/store-gate.ts'
import { TOKENS } from '../helpers/gate.ts'
import { eventually } from '../helpers/eventually.ts'

const ADMIN = 'operator-token-for-the-hard-link-test'
const READ = '/api/v4/projects/200/packages/generic/x/1.0.0/x.bin'
const HASH = 'b'.repeat(64)
const REGISTRATION = { user_id: 7, granular_scopes: [], updated_at: '2026-01-01T00:00:00Z' }


function directory (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-hard-links-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A state file where acme/lib (200) lets acme/platform/app's jobs (100) in. */
async function stateFile (t: TestContext): Promise<string> {
  const file = join(directory(t), 'grants.json')
  const seed = await createMemoryStore({ file })
  await seed.put(doc(200, 'acme/lib', [100]))
  await seed.close()
  return file
}

const jobRead = async (url: string): Promise<number> => (await fetch(url + READ, { headers: { 'job-token': TOKENS.app } })).status
const removeEntry = async (url: string): Promise<number> =>
  (await fetch(url + '/api/v4/projects/200/job_token_scope/allowlist/100', { method: 'DELETE', headers: { 'private-token': ADMIN } })).status

test('a gate does not start on a state file with another name, which its saves would leave behind', async t => {
  const file = await stateFile(t)
  const other = file.replace(/grants\.json$/, 'other.json')
  linkSync(file, other)
  const store = await createMemoryStore({ file }).catch((err: unknown) => err)
  if (!(store instanceof GrantsError)) {
    // Before: both names start, and each gate sees only its own writes.
    const one = await startStoreGate(t, store as Awaited<ReturnType<typeof createMemoryStore>>, { env: { GATE_ADMIN_TOKEN: ADMIN } })
    const secondStore = await createMemoryStore({ file: other })
    const second = await startStoreGate(t, secondStore, { env: { GATE_ADMIN_TOKEN: ADMIN } })
    t.after(async () => { await (store as Awaited<ReturnType<typeof createMemoryStore>>).close(); await secondStore.close() })
    assert.equal(await removeEntry(one.url), 204)
    await new Promise(resolve => setTimeout(resolve, 1500))
    assert.notEqual(await jobRead(second.url), 200, 'the entry removed through the gate on one name is allowed by the gate on the other')
    assert.fail('a state file with two names was taken')
  }
  assert.equal(store.code, 'GRANTS_STORE_UNAVAILABLE')
  assert.match(store.message, /2 names \(hard links\)/)
  assert.ok(!store.message.includes('\n'))
})

test('a running gate refuses once its state file gains another name', async t => {
  const file = await stateFile(t)
  const store = await createMemoryStore({ file, watchIntervalMs: 50 })
  t.after(() => store.close())
  const gate = await startStoreGate(t, store, { env: { GATE_ADMIN_TOKEN: ADMIN } })
  assert.equal(await jobRead(gate.url), 200)
  // An older gate, or anything that does not look, is about to run on the other name.
  linkSync(file, file.replace(/grants\.json$/, 'other.json'))
  assert.equal(await eventually(async () => { const status = await jobRead(gate.url); return status !== 200 && status }, { message: 'the gate to stop answering from a file with two names' }), 503)
  assert.match((await store.health()).detail ?? '', /hard links/)
})

test('a state file behind symbolic links (a Kubernetes volume) is one name and still works', async t => {
  const dir = directory(t)
  // The kubelet's layout: file -> ..data/file, ..data -> ..<timestamp>/.
  mkdirSync(join(dir, '..2026_12_02'))
  symlinkSync('..2026_12_02', join(dir, '..data'))
  symlinkSync('..data/grants.json', join(dir, 'grants.json'))
  const store = await createMemoryStore({ file: join(dir, 'grants.json') })
  t.after(() => store.close())
  await store.put(doc(200, 'acme/lib', [100]))
  assert.deepEqual((await store.get(200))?.entries.map(e => e.targetId), [100])
  assert.equal((await store.health()).ok, true)
})

test('a writable token registry with another name stops the start; a name gained later refuses it; a read-only one is read', t => {
  const dir = directory(t)
  const file = join(dir, 'registry.json')
  writeFileSync(file, JSON.stringify({ [HASH]: REGISTRATION }), { mode: 0o600 })
  linkSync(file, join(dir, 'other.json'))
  assert.throws(() => createTokenRegistry({ file }), (err: unknown) => err instanceof TypeError && /2 names \(hard links\)/.test(err.message))

  rmSync(join(dir, 'other.json'))
  const registry = createTokenRegistry({ file })
  assert.ok(registry.get(HASH) !== undefined)
  linkSync(file, join(dir, 'other.json'))
  assert.equal(registry.get(HASH), undefined)
  assert.throws(() => registry.delete(HASH), (err: unknown) => err instanceof GateError && err.code === 'GRAPHQL_TOKEN_REGISTRY_CHANGED' && /hard links/.test(err.message))

  // A read-only copy is never written: its names do not matter.
  chmodSync(file, 0o444)
  const readOnly = createTokenRegistry({ file })
  assert.equal(readOnly.readOnly, true)
  assert.ok(readOnly.get(HASH) !== undefined)
})
