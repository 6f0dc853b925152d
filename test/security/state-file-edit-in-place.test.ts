// Finding: the memory store and a writable GraphQL token registry tell another process's write of
// their file by its inode, size and modification time. An edit in place that keeps the size and
// sets the modification time back (`cp -p` of an edited copy, `rsync --inplace`, `touch -d`) went
// unseen: the store went on deciding from its copy and wrote it over the edit at its next save,
// and the registry kept answering a registration the file no longer held. The change time (ctime),
// which no one sets back, is compared too; a save takes its file's identity after the rename,
// which changes the ctime of the file it renames.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { GrantsStoreUnavailableError } from '../../src/grants/errors.ts'
import { type ProjectGrants } from '../../src/grants/model.ts'
import { grantsDoc } from '../helpers/grants-doc.ts'
import { createTokenRegistry, type RegisteredToken } from '../../src/graphql/token-registry.ts'
import { GateError } from '../../src/errors.ts'

const doc = (projectId: number, allowed: number[]): ProjectGrants => grantsDoc(projectId, `acme/p${projectId}`, allowed)

function dir (t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'jtg-edit-in-place-'))
  t.after(() => rmSync(d, { recursive: true, force: true }))
  return d
}

/** Rewrites `file` in place (the same inode) with `text` of the same length, its modification time set back. */
function editInPlace (file: string, text: string): void {
  const before = statSync(file)
  assert.notEqual(text, readFileSync(file, 'utf8'), 'the edit changes the file')
  const { mtimeNs } = statSync(file, { bigint: true })
  assert.equal(Buffer.byteLength(text), before.size, 'the edit keeps the size')
  writeFileSync(file, text)
  // To the nanosecond, as `touch -d` and `cp -p` set it (utimes() takes a double of seconds).
  const ns = String(mtimeNs % 1_000_000_000n).padStart(9, '0')
  execFileSync('touch', ['-m', '-d', `@${mtimeNs / 1_000_000_000n}.${ns}`, file])
  const after = statSync(file)
  assert.equal(after.ino, before.ino)
  assert.equal(after.mtimeMs, before.mtimeMs)
}

test('memory store: an edit in place keeping the size and the modification time is another process\'s write', async t => {
  const file = join(dir(t), 'grants.json')
  const store = await createMemoryStore({ file, watchIntervalMs: 20 })
  t.after(() => store.close())
  await store.put(doc(200, [100]))
  // Its own saves are not taken for another's: a second one goes through.
  await store.put(doc(200, [100, 101]))
  // Project 101 removed from acme's allowlist by hand, with the entry of project 109 in its place.
  editInPlace(file, readFileSync(file, 'utf8').replace('"targetId": 101', '"targetId": 109'))
  await assert.rejects(store.put(doc(300, [])), GrantsStoreUnavailableError, 'a save over the edit is refused')
  await assert.rejects(store.get(200), GrantsStoreUnavailableError, 'nothing is decided from the copy')
  assert.match(readFileSync(file, 'utf8'), /"targetId": 109/, 'the edit stands in the file')
})

test('token registry: an edit in place keeping the size and the modification time answers no registration', t => {
  const file = join(dir(t), 'registry.json')
  const hash = 'a'.repeat(64)
  const other = 'b'.repeat(64)
  const registration: RegisteredToken = { user_id: 7, granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200, group_id: null }], updated_at: '2026-01-01T00:00:00.000Z' }
  writeFileSync(file, JSON.stringify({ [hash]: registration }), { mode: 0o600 })
  const registry = createTokenRegistry({ file })
  assert.notEqual(registry.get(hash), undefined)
  // Its own saves are not taken for another's.
  registry.set(other, registration)
  registry.set(other, { ...registration, user_id: 9 })
  assert.equal(registry.get(other)?.user_id, 9)
  // The first registration's user changed by hand, size and time kept.
  editInPlace(file, readFileSync(file, 'utf8').replace('"user_id": 7', '"user_id": 8'))
  assert.equal(registry.current(), false)
  assert.equal(registry.get(hash), undefined, 'the registration the file no longer holds is not answered')
  assert.throws(() => registry.set(other, registration), (err: unknown) => err instanceof GateError && err.code === 'GRAPHQL_TOKEN_REGISTRY_CHANGED')
})
