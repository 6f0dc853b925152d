import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { GrantsError, GrantsStoreUnavailableError } from '../../src/grants/errors.ts'
import { grantsFor, storeContract } from './store-contract.ts'

function tempDir (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-grants-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

storeContract('memory', async (options) => {
  const store = await createMemoryStore(options)
  return { writer: store, reader: store }
})

let files = 0
const filesDir = mkdtempSync(join(tmpdir(), 'jtg-grants-contract-'))
process.on('exit', () => rmSync(filesDir, { recursive: true, force: true }))
storeContract('memory with file', async (options) => {
  const store = await createMemoryStore({ ...options, file: join(filesDir, `grants-${++files}.json`) })
  return { writer: store, reader: store }
})

test('file store: grants, versions and paths survive a restart', async t => {
  const file = join(tempDir(t), 'grants.json')
  const first = await createMemoryStore({ file })
  await first.put(grantsFor(1, 'Acme/One'))
  await first.put(grantsFor(1, 'Acme/One', { inboundEnabled: false }))
  await first.put(grantsFor(2, 'acme/two', { packageRules: { maven: { write: 'maintainer' } } }))
  await first.put(grantsFor(3, 'acme/three'))
  await first.delete(3)
  await first.close()

  const second = await createMemoryStore({ file })
  t.after(() => second.close())
  const one = await second.get(1)
  assert.equal(one?.version, 2)
  assert.equal(one?.inboundEnabled, false)
  assert.deepEqual((await second.get(2))?.packageRules, { maven: { write: 'maintainer' } })
  assert.equal(await second.get(3), null)
  assert.equal(await second.resolvePath('ACME/ONE'), 1)
  assert.equal(await second.put(grantsFor(1, 'Acme/One')), 3, 'versions continue after the restart')
})

test('file store: a write whose save fails changes nothing', async t => {
  const dir = tempDir(t)
  const file = join(dir, 'grants.json')
  const store = await createMemoryStore({ file })
  t.after(() => store.close())
  await store.put(grantsFor(1, 'acme/one'))
  rmSync(dir, { recursive: true, force: true })
  await assert.rejects(store.put(grantsFor(1, 'acme/renamed', { inboundEnabled: false })), GrantsStoreUnavailableError)
  await assert.rejects(store.put(grantsFor(2, 'acme/two')), GrantsStoreUnavailableError)
  assert.equal((await store.get(1))?.projectPath, 'acme/one')
  assert.equal(await store.get(2), null)
  assert.equal(await store.version(1), 1)
  assert.equal((await store.health()).ok, false)
})

test('file store: an unreadable file stops the start instead of starting empty', async t => {
  const dir = tempDir(t)
  const file = join(dir, 'grants.json')
  writeFileSync(file, '{"format":"job-token-gate/grants","formatVersion":1,"projects":[')
  await assert.rejects(createMemoryStore({ file }), (err: unknown) => err instanceof GrantsError && err.code === 'GRANTS_INVALID' && /not valid JSON/.test(err.message))
  writeFileSync(file, JSON.stringify({ format: 'job-token-gate/grants', formatVersion: 1, projects: [{ version: 1, grants: { projectId: 'x' } }] }))
  await assert.rejects(createMemoryStore({ file }), /projects\[0\]/)
  writeFileSync(file, JSON.stringify({ something: 'else' }))
  await assert.rejects(createMemoryStore({ file }), /is not a job-token-gate\/grants file/)
  writeFileSync(file, JSON.stringify({ format: 'job-token-gate/grants', formatVersion: 1, projects: [], paths: { 'acme/kit': 'x' } }))
  await assert.rejects(createMemoryStore({ file }), /paths must map paths to project ids/)
})

test('file store: a missing file starts empty and leftover temp files are removed', async t => {
  const dir = tempDir(t)
  const file = join(dir, 'grants.json')
  const leftover = [`${file}.123.4.tmp`, `${file}.lock.tmp`, `${file}.lock.tmp.0a1b2c3d4e5f6789.tmp`]
  for (const name of leftover) {
    writeFileSync(name, '{"half":')
    utimesSync(name, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
  }
  const store = await createMemoryStore({ file })
  t.after(() => store.close())
  assert.equal(await store.get(1), null)
  assert.deepEqual(readdirSync(dir), [])
  await store.put(grantsFor(1, 'acme/one'))
  assert.deepEqual(readdirSync(dir), ['grants.json'])
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).projects[0].grants.projectPath, 'acme/one')
})

test('file store: a start leaves alone the save and the lock of a gate still running on the file', async t => {
  // The old replica of a rollout may be saving while the new one starts: its temporary file and
  // its lock are seconds old at most, and removing them failed its save.
  const dir = tempDir(t)
  const file = join(dir, 'grants.json')
  const running = [`${file}.0a1b2c3d4e5f6789.tmp`, `${file}.lock.tmp`]
  for (const name of running) writeFileSync(name, 'held')
  const store = await createMemoryStore({ file })
  t.after(() => store.close())
  assert.deepEqual(readdirSync(dir).sort(), running.map(name => basename(name)).sort())
})

test('file store: root namespace settings survive a restart; the file says format version 2 only while it holds some', async t => {
  const file = join(tempDir(t), 'grants.json')
  const first = await createMemoryStore({ file })
  await first.put(grantsFor(1, 'acme/one'))
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).formatVersion, 1)
  await first.putNamespace({ namespacePath: 'acme', jobTokenPoliciesEnabled: false })
  await first.putNamespace({ namespacePath: 'other', jobTokenPoliciesEnabled: true })
  await first.putNamespace({ namespacePath: 'other', jobTokenPoliciesEnabled: false })
  const saved = JSON.parse(readFileSync(file, 'utf8'))
  assert.equal(saved.formatVersion, 2, 'a gate that predates root namespace settings refuses the file instead of dropping them')
  assert.deepEqual(saved.namespaces, [
    { version: 1, settings: { namespacePath: 'acme', jobTokenPoliciesEnabled: false } },
    { version: 2, settings: { namespacePath: 'other', jobTokenPoliciesEnabled: false } }
  ])
  await first.close()

  const second = await createMemoryStore({ file })
  assert.deepEqual(await second.getNamespace('other'), { namespacePath: 'other', jobTokenPoliciesEnabled: false, version: 2 })
  assert.equal((await second.get(1))?.projectPath, 'acme/one', 'projects load beside them')
  assert.equal(await second.putNamespace({ namespacePath: 'other', jobTokenPoliciesEnabled: true }), 3, 'versions continue after the restart')
  await second.deleteNamespace('acme')
  await second.deleteNamespace('other')
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).formatVersion, 1, 'back to version 1 once none are left')
  await second.close()

  writeFileSync(file, JSON.stringify({ format: 'job-token-gate/grants', formatVersion: 2, projects: [], namespaces: [{ version: 1, settings: { namespacePath: 'Acme/Sub', jobTokenPoliciesEnabled: true } }] }))
  await assert.rejects(createMemoryStore({ file }), /namespaces\[0\]/)
})
