// Files one gate owns and rewrites whole (the memory store's state file, a writable GraphQL token
// registry): which version of the file is on disk, to notice another process writing it, and
// which file a path names once its symbolic links are followed, so that a save replaces the file
// and not the link, and the lock a save holds while it looks at the file and renames over it.

import { randomBytes } from 'node:crypto'
import { closeSync, linkSync, lstatSync, openSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeSync, type Stats } from 'node:fs'
import { dirname, resolve } from 'node:path'

/**
 * What tells one version of a file from another: a save makes a new file (rename), an edit in
 * place changes its size or times, and always its change time (ctime), which no one sets back as
 * `touch -d`, `cp -p` or `rsync --inplace` set the modification time back. A rename changes the
 * renamed file's ctime too: a save takes its file's identity after the rename.
 * `error`: the file could not be looked at, which matches nothing.
 */
export interface FileIdentity { readonly dev: number, readonly ino: number, readonly size: number, readonly mtimeMs: number, readonly ctimeMs: number, readonly nlink: number, readonly error?: string }

export function identityFrom (stats: Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs' | 'ctimeMs' | 'nlink'>): FileIdentity {
  return { dev: stats.dev, ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, nlink: stats.nlink }
}

/** The file as it is now, null when there is none; throws on any other failure. */
export function identityOf (file: string): FileIdentity | null {
  try {
    return identityFrom(statSync(file))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

/** identityOf, never throwing: a file that cannot be looked at is an identity that matches none (fail closed). */
export function identityNow (file: string): FileIdentity | null {
  try {
    return identityOf(file)
  } catch (err) {
    return { dev: -1, ino: -1, size: -1, mtimeMs: -1, ctimeMs: -1, nlink: -1, error: (err as Error).message }
  }
}

export function sameIdentity (a: FileIdentity | null, b: FileIdentity | null): boolean {
  if (a === null || b === null) return a === b
  return a.error === undefined && b.error === undefined && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs
}

/**
 * Why a gate may not rewrite `file` (as `identity` found it): it has other names (hard links). A
 * save renamed over one name replaces that name only: the others keep the old version, and a gate
 * or tool on another name sees none of this gate's writes, nor this gate theirs (each looks at
 * the name it writes). Undefined when it has one name or none; a symbolic link is no other name.
 */
export function otherNamesOf (file: string, identity: FileIdentity | null): string | undefined {
  if (identity === null || identity.nlink <= 1) return undefined
  return `${file} has ${identity.nlink} names (hard links): a save replaces one name only, and a gate or tool on another name would not see it, nor this gate its writes; give every gate one name of the file (a symbolic link to it is fine) and remove the others`
}

/**
 * The file a path names once its symbolic links are followed (the path itself where it is none);
 * one that does not exist yet is where the last link points. Throws an Error saying why not.
 */
export function linkedFileOf (file: string): string {
  let path = file
  for (let hops = 0; hops < 40; hops++) {
    try {
      if (!lstatSync(path).isSymbolicLink()) return path
      path = resolve(dirname(path), readlinkSync(path))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return path
      throw err
    }
  }
  throw new Error('too many symbolic links')
}

/**
 * Where a gate holds the lock of `file` while it looks at the file and renames its save over it:
 * `<file>.lock.tmp` (the memory store removes a stale one at start with the other temporary files).
 */
export const lockFileOf = (file: string): string => `${file}.lock.tmp`

/** How long a save waits for another writer's lock, and how old a lock is taken for one left behind. */
const LOCK_WAIT_MS = 2000
const LOCK_STALE_MS = 10_000

/**
 * Whether a temporary file beside a gate's file (a save's, a lock, a lock moved aside) was left by
 * a writer that ended: untouched for LOCK_STALE_MS. A save holds its own for a write, an fsync and
 * a look, so one younger may be a running gate's (the old replica of a rollout) and is left alone.
 */
function leftBehind (mtimeMs: number): boolean {
  return Date.now() - mtimeMs > LOCK_STALE_MS
}

/**
 * Takes the lock of `file` (lockFileOf): created exclusively, so that of two gates saving one file
 * at once, only one looks at it and renames its save over it at a time; the other, once it holds
 * the lock, finds the file written since and refuses its own save. Without it both could find the
 * file theirs and both rename, and the first one's change, answered as made, was gone. A lock
 * older than LOCK_STALE_MS (held for a look and a rename) was left by a writer that ended: taken
 * over. Returns the release; throws an Error when the lock stays held.
 */
export async function takeFileLock (file: string): Promise<() => void> {
  const lock = lockFileOf(file)
  const deadline = performance.now() + LOCK_WAIT_MS
  for (let wait = 1; ; wait = Math.min(wait * 2, 20)) {
    const held = tryLock(lock)
    if (held !== null) return () => { removeIfSame(lock, aside => isOwn(aside, held)) }
    if (performance.now() > deadline) throw new Error(`${lock} is held by another writer`)
    await new Promise(resolve => setTimeout(resolve, wait))
  }
}

/** takeFileLock, for a writer that saves synchronously (the token registry): waits blocking. */
export function takeFileLockSync (file: string): () => void {
  const lock = lockFileOf(file)
  const deadline = performance.now() + LOCK_WAIT_MS
  const sleeper = new Int32Array(new SharedArrayBuffer(4))
  for (let wait = 1; ; wait = Math.min(wait * 2, 20)) {
    const held = tryLock(lock)
    if (held !== null) return () => { removeIfSame(lock, aside => isOwn(aside, held)) }
    if (performance.now() > deadline) throw new Error(`${lock} is held by another writer`)
    Atomics.wait(sleeper, 0, 0, wait)
  }
}

/**
 * The lock taken (the random text it holds, which tells this writer's lock from one made anew
 * under the name, whatever inode it was given), or null: held by another writer, or a stale one
 * just taken away.
 */
function tryLock (lock: string): string | null {
  const own = randomBytes(16).toString('hex')
  try {
    const fd = openSync(lock, 'wx', 0o600)
    try {
      writeSync(fd, own)
    } catch (err) {
      rmSync(lock, { force: true })
      throw err
    } finally {
      closeSync(fd)
    }
    return own
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  // A stale lock is taken away as the very file looked at (its time tells it from a lock made
  // since): removed by its name, it could be the lock another gate took over a moment before, and
  // both then held it, and both renamed their saves.
  try {
    removeIfLeftBehind(lock)
  } catch { /* gone meanwhile: tried again */ }
  return null
}

/**
 * Removes `path`, a temporary file beside a gate's file (a save's, a lock, a lock moved aside),
 * when it was left behind (leftBehind), as the very file looked at: removed by its name, a stale
 * lock could be the one another gate took over a moment before, which it then held no more.
 * Throws when there is nothing to look at; a directory planted there is left alone.
 */
export function removeIfLeftBehind (path: string): void {
  const seen = lstatSync(path)
  if (seen.isDirectory() || !leftBehind(seen.mtimeMs)) return
  removeIfSame(path, aside => { const moved = lstatSync(aside); return moved.dev === seen.dev && moved.ino === seen.ino && moved.mtimeMs === seen.mtimeMs })
}

/** Whether the lock moved to `aside` is the one holding `own` (a regular file, read only then: a pipe planted there would block the read). */
function isOwn (aside: string, own: string): boolean {
  const moved = lstatSync(aside)
  return moved.isFile() && moved.size === Buffer.byteLength(own) && readFileSync(aside, 'utf8') === own
}

/**
 * Removes `lock` when it is still the file `same` tells (a writer's own at release, the stale one
 * looked at for a takeover): moved aside under a name of its own first, and put back when it is
 * another (a lock taken since, which its holder holds).
 */
function removeIfSame (lock: string, same: (aside: string) => boolean): void {
  const aside = `${lock}.${randomBytes(8).toString('hex')}.tmp`
  try {
    renameSync(lock, aside)
  } catch {
    return // gone: nothing of this writer's to remove
  }
  let mine = false
  try { mine = same(aside) } catch { /* not told: put back, as held */ }
  if (!mine) {
    try { linkSync(aside, lock) } catch { /* a lock taken meanwhile holds; a directory cannot be put back */ }
  }
  try { rmSync(aside, { force: true }) } catch { /* a directory planted as the lock: left aside */ }
}
