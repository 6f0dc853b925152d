// Finding: the memory store looked at the state file (was it still the one this gate last wrote?)
// and then renamed its save over it, with nothing between the two to keep another writer out. Two
// gates on one file saving at once could both look, both find the file theirs, and both rename:
// the first one's change was answered as made (the configuration API's 204) and was gone from the
// file the next moment, while the gate that renamed last went on without it. An allowlist entry
// removed through the first stayed allowed by the second, and in the file for every start after.
// The look and the rename are now made holding a lock file beside the state file, created
// exclusively: a second writer waits, then finds the other's save and refuses its own. The token
// registry's saves hold the same lock (its temporary file has one name: a second gate removed it
// and made its own under that name, which the first then renamed over the registry).

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { GrantsStoreUnavailableError } from '../../src/grants/errors.ts'
import { createTokenRegistry } from '../../src/graphql/token-registry.ts'
import { GateError } from '../../src/errors.ts'
import { grantsDoc as doc } from '../helpers/grants-doc.ts'


/** A state file where acme/lib (200) lets projects 100 and 101 in. */
async function stateFile (t: TestContext): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-concurrent-saves-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'grants.json')
  const seed = await createMemoryStore({ file })
  await seed.put(doc(200, 'acme/lib', [100, 101]))
  await seed.close()
  return file
}

async function onDisk (file: string): Promise<{ lib: number[] | null, tools: boolean }> {
  const store = await createMemoryStore({ file })
  try {
    return { lib: (await store.get(200))?.entries.map(e => e.targetId) ?? null, tools: (await store.get(300)) !== null }
  } finally {
    await store.close()
  }
}

test('two gates saving at once: a change answered as made is in the state file', async t => {
  for (let round = 0; round < 30; round++) {
    const file = await stateFile(t)
    const one = await createMemoryStore({ file, watchIntervalMs: 3_600_000 })
    const other = await createMemoryStore({ file, watchIntervalMs: 3_600_000 })
    try {
      // One removes project 101's entry while the other writes another project.
      const [removed, written] = await Promise.allSettled([one.put(doc(200, 'acme/lib', [100])), other.put(doc(300, 'other/tools', []))])
      const disk = await onDisk(file)
      if (removed.status === 'fulfilled') assert.deepEqual(disk.lib, [100], `round ${round}: the removal was answered as made and is not in the file`)
      if (written.status === 'fulfilled') assert.equal(disk.tools, true, `round ${round}: the other write was answered as made and is not in the file`)
    } finally {
      await one.close()
      await other.close()
    }
  }
})

test('a lock another writer left behind it does not hold saves for good', async t => {
  const file = await stateFile(t)
  // A writer that ended between its look and its rename: its lock stays.
  writeFileSync(`${file}.lock.tmp`, 'left behind\n')
  const past = new Date(Date.now() - 60_000)
  utimesSync(`${file}.lock.tmp`, past, past)
  const store = await createMemoryStore({ file })
  t.after(() => store.close())
  // Removed at start once stale, as the temporary files are.
  assert.equal(existsSync(`${file}.lock.tmp`), false)
  await store.put(doc(200, 'acme/lib', [100]))
  assert.deepEqual((await onDisk(file)).lib, [100])
})

test('a save waits for the lock another writer holds, and refuses while it stays held; one left behind is taken over', async t => {
  const file = await stateFile(t)
  const store = await createMemoryStore({ file })
  t.after(() => store.close())
  // Another gate between its look at the file and its rename.
  writeFileSync(`${file}.lock.tmp`, 'held\n')
  await assert.rejects(store.put(doc(200, 'acme/lib', [100])), (err: unknown) => err instanceof GrantsStoreUnavailableError && /held by another writer/.test(err.message))
  assert.equal(readFileSync(`${file}.lock.tmp`, 'utf8'), 'held\n')
  assert.match(readFileSync(file, 'utf8'), /"targetId": 101/)
  // A writer that ended holding it: a lock a minute old is no save under way.
  const past = new Date(Date.now() - 60_000)
  utimesSync(`${file}.lock.tmp`, past, past)
  await store.put(doc(200, 'acme/lib', [100]))
  assert.deepEqual((await onDisk(file)).lib, [100])
})

test('the token registry saves holding the same lock', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-registry-lock-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'registry.json')
  const hash = 'a'.repeat(64)
  const registration = { user_id: 7, granular_scopes: [], updated_at: '2026-01-01T00:00:00Z' }
  const registry = createTokenRegistry({ file })
  registry.set(hash, registration)
  // Another gate saving the registry: its temporary file under the one name, and the lock.
  writeFileSync(`${file}.lock.tmp`, 'held\n')
  writeFileSync(`${file}.tmp`, 'the other gate\'s registry\n')
  assert.throws(() => registry.delete(hash), (err: unknown) => err instanceof GateError && err.code === 'GRAPHQL_TOKEN_REGISTRY_WRITE_FAILED')
  // Nothing changed, here or there: the other's temporary file is as it left it.
  assert.ok(registry.get(hash) !== undefined)
  assert.ok(hash in JSON.parse(readFileSync(file, 'utf8')))
  assert.equal(readFileSync(`${file}.tmp`, 'utf8'), 'the other gate\'s registry\n')
  rmSync(`${file}.lock.tmp`)
  rmSync(`${file}.tmp`)
  assert.equal(registry.delete(hash), true)
  assert.ok(!(hash in JSON.parse(readFileSync(file, 'utf8'))))
})
