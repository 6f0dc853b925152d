// Finding: a save that found the lock of its file (`<file>.lock.tmp`) over 10 s old took it over by
// removing the lock by its name, then creating its own; and a save released its lock by removing
// whatever file had the name by then. Two gates finding the same stale lock at once could both
// take it: one looked at the stale lock, the other removed it and made its own, and the first then
// removed the other's fresh lock and made its own, both holding it; so could a writer whose lock
// was taken over (it ran past 10 s), removing on release the lock its successor held, for a third
// to take. Two holders both find the file theirs and both rename their saves over it: the first
// one's change, answered as made, is gone from the file. A lock is now taken over, and released,
// only as the very file that was looked at (moved aside under a name of its own, and put back if
// it is another), so that a lock taken meanwhile stays its holder's.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import fs, { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lockFileOf, takeFileLock, takeFileLockSync } from '../../src/file-identity.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'

function stateFile (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-lock-takeover-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'grants.json')
  writeFileSync(file, '{}\n')
  return file
}

/** A lock a writer that ended left behind: a minute old. */
function staleLock (file: string): void {
  writeFileSync(lockFileOf(file), 'left behind\n')
  const past = new Date(Date.now() - 60_000)
  utimesSync(lockFileOf(file), past, past)
}

/**
 * Another gate's takeover, right after this one looked at the stale lock: it removes it and
 * creates its own, which it holds. (The look is a stat of the lock, following links or not,
 * blocking or not.)
 */
function otherTakesOverAfterTheLook (t: TestContext, lock: string): void {
  const original = { statSync: fs.statSync, lstatSync: fs.lstatSync }
  const originalPromises = { stat: fs.promises.stat, lstat: fs.promises.lstat }
  let done = false
  const takeOver = (path: fs.PathLike): void => {
    if (!done && String(path) === lock) {
      done = true
      rmSync(lock)
      writeFileSync(lock, 'the other gate\n', { flag: 'wx' })
    }
  }
  const hook = (name: 'statSync' | 'lstatSync') => ((path: fs.PathLike, options?: fs.StatSyncOptions) => {
    const stats = (original[name] as (p: fs.PathLike, o?: fs.StatSyncOptions) => fs.Stats)(path, options)
    takeOver(path)
    return stats
  }) as typeof fs.statSync
  const hookPromise = (name: 'stat' | 'lstat') => (async (path: fs.PathLike) => {
    const stats = await originalPromises[name](path)
    takeOver(path)
    return stats
  }) as typeof fs.promises.stat
  Object.assign(fs, { statSync: hook('statSync'), lstatSync: hook('lstatSync') })
  Object.assign(fs.promises, { stat: hookPromise('stat'), lstat: hookPromise('lstat') })
  syncBuiltinESMExports()
  t.after(() => { Object.assign(fs, original); Object.assign(fs.promises, originalPromises); syncBuiltinESMExports() })
}

test('of two gates taking over one stale lock, one holds it', async t => {
  const file = stateFile(t)
  staleLock(file)
  otherTakesOverAfterTheLook(t, lockFileOf(file))
  // The other gate holds the lock it made: this save waits, then refuses.
  await assert.rejects(takeFileLock(file), /held by another writer/)
  assert.equal(readFileSync(lockFileOf(file), 'utf8'), 'the other gate\n')
})

test('the registry\'s blocking wait: of two gates taking over one stale lock, one holds it', t => {
  const file = stateFile(t)
  staleLock(file)
  otherTakesOverAfterTheLook(t, lockFileOf(file))
  assert.throws(() => takeFileLockSync(file), /held by another writer/)
  assert.equal(readFileSync(lockFileOf(file), 'utf8'), 'the other gate\n')
})

test('a store starting beside a stale lock leaves alone the lock another gate takes over meanwhile', async t => {
  // The start removes temporary files left long ago, the lock among them; removed by its name
  // after the look, it was the lock the running gate had just taken over, which then held nothing.
  const file = stateFile(t)
  rmSync(file)
  staleLock(file)
  otherTakesOverAfterTheLook(t, lockFileOf(file))
  const store = await createMemoryStore({ file })
  t.after(() => store.close())
  assert.equal(readFileSync(lockFileOf(file), 'utf8'), 'the other gate\n')
  assert.deepEqual(readdirSync(join(file, '..')), ['grants.json.lock.tmp'])
})

test('a writer whose lock was taken over does not release its successor\'s', async t => {
  const file = stateFile(t)
  const release = await takeFileLock(file)
  // It ran past 10 s: another gate took the lock over and holds it.
  rmSync(lockFileOf(file))
  writeFileSync(lockFileOf(file), 'the successor\n', { flag: 'wx' })
  release()
  assert.equal(readFileSync(lockFileOf(file), 'utf8'), 'the successor\n')
  const releaseSync = takeFileLockSync(`${file}.other`)
  rmSync(lockFileOf(`${file}.other`))
  writeFileSync(lockFileOf(`${file}.other`), 'the successor\n', { flag: 'wx' })
  releaseSync()
  assert.equal(readFileSync(lockFileOf(`${file}.other`), 'utf8'), 'the successor\n')
})

test('a stale lock is taken over, and a lock is released, leaving nothing behind', async t => {
  const file = stateFile(t)
  staleLock(file)
  const release = await takeFileLock(file)
  assert.match(readFileSync(lockFileOf(file), 'utf8'), /^[0-9a-f]{32}$/)
  release()
  assert.equal(existsSync(lockFileOf(file)), false)
  staleLock(file)
  takeFileLockSync(file)()
  assert.deepEqual(readdirSync(join(file, '..')), ['grants.json'])
})
