// Finding: the memory store saved through a temporary file named by its process id and a count of
// its saves (`<file>.<pid>.<n>.tmp`), opened without asking that it be new. Two gates on one state
// file in containers of their own run as the same process id (the image's entry point is PID 1),
// so their saves used the same names, and a save wrote into, then renamed, the file another gate
// was writing: a gate then took the bytes the other wrote for its own save, answered from what it
// had in memory while the file held the other's state (or a mix of both, not JSON), and never saw
// it. An allowlist entry removed through that gate came back on its next start. A save now writes
// a file of its own: a random name beside the state file, created new (O_EXCL).

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { grantsDoc as doc } from '../helpers/grants-doc.ts'
import type { GrantStore } from '../../src/grants/store.ts'
import { startStoreGate } from '../helpers/store-gate.ts'

const ADMIN = 'operator-token-for-the-temp-names-test'


/** A state file where acme/lib (200) lets projects 100 and 101 in. */
async function stateFile (t: TestContext): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-temp-names-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'grants.json')
  const seed = await createMemoryStore({ file })
  await seed.put(doc(200, 'acme/lib', [100, 101]))
  await seed.close()
  return file
}

/** What the state file holds, as a gate started on it would read it. */
async function onDisk (file: string): Promise<{ lib: number[] | null, tools: boolean } | 'unreadable'> {
  try {
    JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    return 'unreadable'
  }
  const store = await createMemoryStore({ file })
  try {
    return { lib: (await store.get(200))?.entries.map(e => e.targetId) ?? null, tools: (await store.get(300)) !== null }
  } finally {
    await store.close()
  }
}

/** What a store answers, or null once it refuses (another process wrote its file). */
async function answers (store: GrantStore): Promise<{ lib: number[] | null, tools: boolean } | null> {
  // health() looks at the file; the look runs once the writes before it are done.
  await store.health()
  await new Promise(resolve => setImmediate(resolve))
  if (!(await store.health()).ok) return null
  return { lib: (await store.get(200))?.entries.map(e => e.targetId) ?? null, tools: (await store.get(300)) !== null }
}

test('a save never writes into a temporary file another gate of the same process id is writing', async t => {
  const file = await stateFile(t)
  const store = await createMemoryStore({ file })
  t.after(() => store.close())
  const gate = await startStoreGate(t, store, { env: { GATE_ADMIN_TOKEN: ADMIN } })
  // Another gate on this file, in a container where it is this process id too, is saving: its
  // first save's temporary file, written and not yet renamed.
  const theirs = `${file}.${process.pid}.1.tmp`
  const fd = openSync(theirs, 'wx', 0o600)
  t.after(() => closeSync(fd))
  writeSync(fd, 'the other gate\'s state\n')

  const removed = await fetch(gate.url + '/api/v4/projects/200/job_token_scope/allowlist/101', { method: 'DELETE', headers: { 'private-token': ADMIN } })
  assert.equal(removed.status, 204)
  // The other gate's file is as it left it, and the removal is on disk.
  assert.equal(readFileSync(theirs, 'utf8'), 'the other gate\'s state\n')
  assert.deepEqual(readdirSync(dirname(file)).filter(name => name.endsWith('.tmp')), [`grants.json.${process.pid}.1.tmp`])
  assert.deepEqual(await onDisk(file), { lib: [100], tools: false })
})

test('two gates of the same process id saving at once: one that still answers answers what the file holds', async t => {
  for (let round = 0; round < 20; round++) {
    const file = await stateFile(t)
    const one = await createMemoryStore({ file, watchIntervalMs: 3_600_000 })
    const other = await createMemoryStore({ file, watchIntervalMs: 3_600_000 })
    try {
      // One removes an entry while the other writes another project.
      await Promise.allSettled([one.put(doc(200, 'acme/lib', [100])), other.put(doc(300, 'other/tools', []))])
      const disk = await onDisk(file)
      assert.notEqual(disk, 'unreadable', `round ${round}: the saves left a state file that is not JSON`)
      for (const [name, store] of [['one', one], ['other', other]] as const) {
        const answered = await answers(store)
        if (answered !== null) assert.deepEqual(answered, disk, `round ${round}: gate ${name} answers a state the file does not hold`)
      }
    } finally {
      await one.close()
      await other.close()
    }
  }
})
