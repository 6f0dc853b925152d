// Files one gate owns and rewrites whole (the memory store's state file, a writable GraphQL token
// registry): which version of the file is on disk, to notice another process writing it, and
// which file a path names once its symbolic links are followed, so that a save replaces the file
// and not the link, and the lock a save holds while it looks at the file and renames over it.

import { closeSync, lstatSync, openSync, readlinkSync, rmSync, statSync, type Stats } from 'node:fs'
import { dirname, resolve } from 'node:path'

/**
 * What tells one version of a file from another: a save makes a new file (rename), an edit in
 * place changes its time or size. `error`: the file could not be looked at, which matches nothing.
 */
export interface FileIdentity { readonly dev: number, readonly ino: number, readonly size: number, readonly mtimeMs: number, readonly nlink: number, readonly error?: string }

export function identityFrom (stats: Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs' | 'nlink'>): FileIdentity {
  return { dev: stats.dev, ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs, nlink: stats.nlink }
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
    return { dev: -1, ino: -1, size: -1, mtimeMs: -1, nlink: -1, error: (err as Error).message }
  }
}

export function sameIdentity (a: FileIdentity | null, b: FileIdentity | null): boolean {
  if (a === null || b === null) return a === b
  return a.error === undefined && b.error === undefined && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs
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
 * `<file>.lock.tmp` (the memory store removes it at start with the other temporary files).
 */
export const lockFileOf = (file: string): string => `${file}.lock.tmp`

/** How long a save waits for another writer's lock, and how old a lock is taken for one left behind. */
const LOCK_WAIT_MS = 2000
const LOCK_STALE_MS = 10_000

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
    if (tryLock(lock)) return () => { releaseLock(lock) }
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
    if (tryLock(lock)) return () => { releaseLock(lock) }
    if (performance.now() > deadline) throw new Error(`${lock} is held by another writer`)
    Atomics.wait(sleeper, 0, 0, wait)
  }
}

function tryLock (lock: string): boolean {
  try {
    closeSync(openSync(lock, 'wx', 0o600))
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  try {
    if (Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) rmSync(lock, { force: true })
  } catch { /* gone meanwhile: tried again */ }
  return false
}

function releaseLock (lock: string): void {
  try { rmSync(lock, { force: true }) } catch { /* a lock left behind is taken over once stale */ }
}
