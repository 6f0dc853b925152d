// Finding: a GATE_STATE_FILE that is a symbolic link (to a file on the volume that keeps it, or one
// two gates' links share) was replaced on the first save by a file of the gate's own beside the
// link: the save renamed its temporary file over the path, link and all. What the link named kept
// the old state: a gate whose link sat on storage that does not outlive it (the image's directory)
// brought back on its next start every allowlist entry removed since, and a second gate on the
// same file through a link of its own saw no other process write it, and went on letting in a job
// whose entry was removed through the first. The store now saves to the file the link names, and
// the link stays.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createInstanceSettings, validateProjectGrants, type ProjectGrants } from '../../src/grants/model.ts'
import type { GrantStore } from '../../src/grants/store.ts'
import { startStoreGate } from '../helpers/store-gate.ts'
import { TOKENS } from '../helpers/gate.ts'
import { eventually } from '../helpers/eventually.ts'

const ADMIN = 'operator-token-for-the-state-file-link-test'
const READ = '/api/v4/projects/200/packages/generic/x/1.0.0/x.bin'

const doc = (allowed: number[]): ProjectGrants => validateProjectGrants({
  projectId: 200,
  projectPath: 'acme/lib',
  inboundEnabled: true,
  entries: allowed.map(id => ({ targetType: 'project', targetId: id, defaultPermissions: true, jobTokenPolicies: [], addedBy: null, createdAt: '2026-01-01T00:00:00Z' }))
}, { settings: createInstanceSettings() })

/** The state file on its volume, where acme/lib (200) lets acme/platform/app's jobs (100) in, and a link to it in each of `links` directories. */
async function linkedStateFile (t: TestContext, links: number): Promise<{ file: string, linked: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-state-link-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'volume'))
  const file = join(dir, 'volume', 'grants.json')
  const seed = await createMemoryStore({ file })
  await seed.put(doc([100]))
  await seed.close()
  const linked: string[] = []
  for (let i = 0; i < links; i++) {
    mkdirSync(join(dir, `gate-${i}`))
    const link = join(dir, `gate-${i}`, 'grants.json')
    // Relative, as an image's link to a mounted volume often is.
    symlinkSync(join('..', 'volume', 'grants.json'), link)
    linked.push(link)
  }
  return { file, linked }
}

async function gateOn (t: TestContext, store: GrantStore): Promise<{ url: string }> {
  t.after(() => store.close())
  return await startStoreGate(t, store, { env: { GATE_ADMIN_TOKEN: ADMIN } })
}

const jobRead = async (url: string): Promise<number> => (await fetch(url + READ, { headers: { 'job-token': TOKENS.app } })).status
const removeEntry = async (url: string): Promise<number> =>
  (await fetch(url + '/api/v4/projects/200/job_token_scope/allowlist/100', { method: 'DELETE', headers: { 'private-token': ADMIN } })).status

async function storedEntries (file: string): Promise<number[]> {
  const store = await createMemoryStore({ file })
  try {
    return (await store.get(200))?.entries.map(e => e.targetId) ?? []
  } finally {
    await store.close()
  }
}

test('a change saved through a linked state file is in the file the link names', async t => {
  const { file, linked: [link] } = await linkedStateFile(t, 1)
  const gate = await gateOn(t, await createMemoryStore({ file: link! }))
  assert.equal(await jobRead(gate.url), 200)
  assert.equal(await removeEntry(gate.url), 204)
  assert.equal(await jobRead(gate.url), 403)
  assert.ok(lstatSync(link!).isSymbolicLink(), 'the link stays a link')
  // The next start, through the link or not, reads the removal.
  assert.deepEqual(await storedEntries(file), [])
  assert.deepEqual(await storedEntries(link!), [])
})

test('a gate sees another gate write the state file both reach through links of their own', async t => {
  const { linked: [first, second] } = await linkedStateFile(t, 2)
  const one = await gateOn(t, await createMemoryStore({ file: first! }))
  const other = await gateOn(t, await createMemoryStore({ file: second! }))
  assert.equal(await jobRead(other.url), 200)
  assert.equal(await removeEntry(one.url), 204)
  assert.equal(await eventually(async () => { const status = await jobRead(other.url); return status !== 200 && status }, { message: 'the other gate to stop allowing the removed entry' }), 503)
})
