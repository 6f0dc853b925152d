// Files one gate owns and rewrites whole (the memory store's state file, a writable GraphQL token
// registry): which version of the file is on disk, to notice another process writing it, and
// which file a path names once its symbolic links are followed, so that a save replaces the file
// and not the link.

import { lstatSync, readlinkSync, statSync, type Stats } from 'node:fs'
import { dirname, resolve } from 'node:path'

/**
 * What tells one version of a file from another: a save makes a new file (rename), an edit in
 * place changes its time or size. `error`: the file could not be looked at, which matches nothing.
 */
export interface FileIdentity { readonly dev: number, readonly ino: number, readonly size: number, readonly mtimeMs: number, readonly error?: string }

export function identityFrom (stats: Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs'>): FileIdentity {
  return { dev: stats.dev, ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs }
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
    return { dev: -1, ino: -1, size: -1, mtimeMs: -1, error: (err as Error).message }
  }
}

export function sameIdentity (a: FileIdentity | null, b: FileIdentity | null): boolean {
  if (a === null || b === null) return a === b
  return a.error === undefined && b.error === undefined && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs
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
