// The embedded store, used when no Redis is configured: one process, grants in Maps, optionally
// kept in a JSON file so a single-instance gate keeps its settings across restarts.
//
// Durability: a write first saves the whole state to `<file>.<random>.tmp` (a new file:
// two gates in containers of their own share a process id, PID 1), fsyncs it, renames
// it over the file and fsyncs the directory, and only then changes memory and invalidates. A
// crash at any point leaves either the old file or the new one, never a mix; a write whose save
// fails changes nothing. Writes are serialized; reads never wait for them.
//
// One process only: the file is this process's, read once at start. Another gate (a second
// replica, an overlapping rollout) or `import-allowlists` writing the same file would otherwise
// go unseen here: an entry removed there stayed allowed here for good, and this process's next
// write put it back in the file. The store remembers the file as it last read or wrote it, and
// looks again before every write and every second: a file changed by anyone else
// makes the store refuse every read and write (503, readiness down) until the gate is restarted
// and reads the file anew.

import { randomBytes } from 'node:crypto'
import { open, readFile, readdir, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { checkStoredGrants, foldedPathKey, pathKey, validateNamespaceSettings, type NamespaceSettings, type ProjectGrants, type StoredGrants, type StoredNamespaceSettings } from './model.ts'
import { identityFrom, identityNow, identityOf, linkedFileOf, otherNamesOf, removeIfLeftBehind, sameIdentity, takeFileLock, type FileIdentity } from '../file-identity.ts'
import { GrantsError, GrantsStoreUnavailableError, GrantsVersionConflictError } from './errors.ts'
import { createMemoryUsage } from './usage-memory.ts'
import { auditEventsKept, createListeners, storedAuditEvent, type AuditEvent, type GrantStore, type NamespaceAuditEvent, type NamespacePutOptions, type PutOptions, type StoreHealth } from './store.ts'

export interface MemoryStoreOptions {
  /** JSON file to load at start and save after every write; volatile when absent. */
  readonly file?: string
  /** Wall clock for invalidation timestamps (tests). */
  readonly now?: () => number
  /** Audit events kept per project and root namespace, the newest. Default AUDIT_EVENTS_KEPT. */
  readonly auditEventsKept?: number
  /** How often the state file is looked at for a change made by another process. Default 1000 ms. */
  readonly watchIntervalMs?: number
}

const FORMAT = 'job-token-gate/grants'
// Version 2 adds `namespaces`; a file is written as version 1 while it holds none, so a gate that
// predates them still reads it, and refuses (rather than silently drops) one that does.
const FORMAT_VERSION = 1
const FORMAT_VERSION_NAMESPACES = 2

interface FileDocument {
  format: typeof FORMAT
  formatVersion: number
  /** `imported`: the version the import wrote (StoredGrants.importedVersion); older gates ignore it. */
  projects: Array<{ version: number, grants: ProjectGrants, imported?: number }>
  namespaces?: Array<{ version: number, settings: NamespaceSettings }>
  /**
   * Paths several documents claim: the project the path index entry names (lower-cased path →
   * id). Loading otherwise gives such a path to the first document in the file, which may be the
   * one whose path is old news. A gate that predates it reads the file without it.
   */
  paths?: Record<string, number>
}

interface StoredRecord { grants: ProjectGrants, version: number, imported?: number, stored: StoredGrants }
interface NamespaceRecord { settings: NamespaceSettings, version: number, stored: StoredNamespaceSettings }
/** One write, as serialize() applies it over the current state. */
type Change =
  | { readonly kind: 'project', readonly projectId: number, readonly grants: ProjectGrants | null, readonly version: number, readonly imported: number | undefined }
  | { readonly kind: 'namespace', readonly namespacePath: string, readonly settings: NamespaceSettings | null, readonly version: number }

export async function createMemoryStore (options: MemoryStoreOptions = {}): Promise<GrantStore> {
  const now = options.now ?? Date.now
  const file = options.file
  const kept = auditEventsKept(options.auditEventsKept)
  const records = new Map<number, StoredRecord>()
  const paths = new Map<string, number>()
  // Versions outlive deletes so a re-created project never reuses a version a cache has seen.
  const versions = new Map<number, number>()
  const listeners = createListeners()
  const usage = createMemoryUsage()
  // Audit events per project, oldest first; volatile (not in the state file), like the process.
  const audit = new Map<number, AuditEvent[]>()
  // Root namespace settings, by lower-cased path; versions outlive deletes as for projects.
  const namespaces = new Map<string, NamespaceRecord>()
  const namespaceVersions = new Map<string, number>()
  const namespaceAudit = new Map<string, NamespaceAuditEvent[]>()
  let writes: Promise<unknown> = Promise.resolve()
  let closed = false
  let lastSaveError: string | undefined
  // The state file as this process last read or wrote it; `foreign`: why it is no longer that
  // (another process wrote it), after which nothing is read or written here.
  let known: FileIdentity | null = null
  let foreign: string | undefined
  let watch: NodeJS.Timeout | undefined

  // Where saves are renamed to: the file itself, or the file a symbolic link there names. Renamed
  // over the link, a save would put a file of its own beside it, and what the link names (the
  // volume it points to, another gate's file) would keep the old state for every start after.
  let saveTo: string | undefined

  let loading = false
  if (file !== undefined) {
    try {
      saveTo = linkedFileOf(file)
    } catch (err) {
      throw new GrantsError('GRANTS_STORE_UNAVAILABLE', `cannot read ${file}: ${(err as Error).message}`, { cause: err })
    }
    try { known = identityOf(file) } catch { /* the read below names what is wrong */ }
    const named = otherNamesOf(file, known)
    if (named !== undefined) throw new GrantsError('GRANTS_STORE_UNAVAILABLE', named)
    await removeLeftoverTempFiles(saveTo)
    const loaded = await loadFile(file)
    loading = true
    for (const { grants, version, imported } of loaded.projects) commit(grants.projectId, grants, version, imported)
    loading = false
    // A path several documents claim goes back to the project that held it when the file was saved.
    for (const [key, id] of Object.entries(loaded.paths)) {
      const claimed = records.get(id)
      if (claimed !== undefined && pathKey(claimed.grants.projectPath) === key) paths.set(key, id)
    }
    for (const { settings, version } of loaded.namespaces) commitNamespace(settings.namespacePath, settings, version)
    watch = setInterval(() => { void lookAtFile() }, options.watchIntervalMs ?? 1000)
    watch.unref()
  }

  /**
   * Whether the state file is still the one this process last read or wrote; once it is not,
   * the store refuses everything and every cache drops what it holds (a reset), so no decision
   * is made on what this process has and the file no longer says.
   */
  async function checkFile (): Promise<void> {
    if (file === undefined || foreign !== undefined || closed) return
    // A file that can no longer be looked at is not known to be this process's either.
    const now = identityNow(file)
    // A file that gained a name: what is written under that one is never seen here.
    const named = otherNamesOf(file, now)
    if (named === undefined && sameIdentity(now, known)) return
    foreign = named !== undefined ? `${named}; this gate reads and writes nothing until it is restarted` : `${file} was written by another process (another gate on the same GATE_STATE_FILE, or import-allowlists while this gate runs): this gate no longer knows what it holds, and reads and writes nothing until it is restarted; the memory store is for one gate only, use Redis for more`
    clearInterval(watch)
    listeners.emit({ kind: 'reset', reason: 'state file changed by another process' })
  }

  /**
   * checkFile() between writes (a look during a save could take the file as it was before the
   * rename, or this save's own file, for another's); one waiting at a time.
   */
  let looking: Promise<void> | null = null
  function lookAtFile (): Promise<void> {
    looking ??= serial(checkFile).catch(() => {}).finally(() => { looking = null })
    return looking
  }

  function ensureOwn (): void {
    if (foreign !== undefined) throw new GrantsStoreUnavailableError(foreign, { unwritten: true })
  }

  function commitNamespace (namespacePath: string, settings: NamespaceSettings | null, version: number): void {
    namespaceVersions.set(namespacePath, version)
    if (settings === null) namespaces.delete(namespacePath)
    else namespaces.set(namespacePath, { settings, version, stored: Object.freeze({ ...settings, version }) })
  }

  function commit (projectId: number, grants: ProjectGrants | null, version: number, imported?: number): void {
    reindex(paths, projectId, grants)
    versions.set(projectId, version)
    if (grants === null) {
      records.delete(projectId)
      return
    }
    const importedVersion = imported === undefined ? {} : { importedVersion: imported }
    records.set(projectId, { grants, version, ...(imported === undefined ? {} : { imported }), stored: Object.freeze({ ...grants, version, ...importedVersion }) })
  }

  /** Changes `index` (the path index, or a copy) as writing project `projectId` changes it: before `records` changes. */
  function reindex (index: Map<string, number>, projectId: number, grants: ProjectGrants | null): void {
    const old = records.get(projectId)
    const key = grants === null ? null : pathKey(grants.projectPath)
    const takesPath = key !== null && takesIndex(projectId, key)
    if (old !== undefined && pathKey(old.grants.projectPath) !== key && index.get(pathKey(old.grants.projectPath)) === projectId) index.delete(pathKey(old.grants.projectPath))
    if (takesPath) index.set(key!, projectId)
  }

  /**
   * Whether project `projectId`, about to be written with the path `key`, takes that path's index
   * entry. Not from another project whose document claims the path when this write brings no news
   * of it (the project's document already had it, or the state file is being loaded): a document
   * written again with its old path may be older news than the other's, and the configuration
   * API writes the path GitLab gives a project now, so a change of path is the newer news.
   */
  function takesIndex (projectId: number, key: string): boolean {
    const holder = paths.get(key)
    if (holder === undefined || holder === projectId) return true
    const claimed = records.get(holder)
    if (claimed === undefined || pathKey(claimed.grants.projectPath) !== key) return true
    const own = records.get(projectId)
    return loading ? false : own === undefined || pathKey(own.grants.projectPath) !== key
  }

  /** The whole state with `change` applied, as the file holds it. */
  function serialize (change: Change): string {
    const projects: FileDocument['projects'] = []
    for (const [id, record] of records) if (change.kind !== 'project' || id !== change.projectId) projects.push({ version: record.version, grants: record.grants, ...(record.imported === undefined ? {} : { imported: record.imported }) })
    if (change.kind === 'project' && change.grants !== null) projects.push({ version: change.version, grants: change.grants, ...(change.imported === undefined ? {} : { imported: change.imported }) })
    projects.sort((a, b) => a.grants.projectId - b.grants.projectId)
    // The index entries of paths several documents claim: the file's order does not tell them.
    const index = new Map(paths)
    if (change.kind === 'project') reindex(index, change.projectId, change.grants)
    const claims = new Map<string, number>()
    for (const { grants } of projects) claims.set(pathKey(grants.projectPath), (claims.get(pathKey(grants.projectPath)) ?? 0) + 1)
    const held: Record<string, number> = {}
    for (const [key, count] of [...claims].sort(([a], [b]) => a < b ? -1 : 1)) {
      const id = index.get(key)
      if (count > 1 && id !== undefined) held[key] = id
    }
    const spaces: NonNullable<FileDocument['namespaces']> = []
    for (const [path, record] of namespaces) if (change.kind !== 'namespace' || path !== change.namespacePath) spaces.push({ version: record.version, settings: record.settings })
    if (change.kind === 'namespace' && change.settings !== null) spaces.push({ version: change.version, settings: change.settings })
    spaces.sort((a, b) => a.settings.namespacePath < b.settings.namespacePath ? -1 : 1)
    const contested = Object.keys(held).length === 0 ? {} : { paths: held }
    const doc: FileDocument = spaces.length === 0
      ? { format: FORMAT, formatVersion: FORMAT_VERSION, projects, ...contested }
      : { format: FORMAT, formatVersion: FORMAT_VERSION_NAMESPACES, projects, namespaces: spaces, ...contested }
    return JSON.stringify(doc, null, 2) + '\n'
  }

  async function save (text: string): Promise<void> {
    const target = saveTo!
    // A file of this save's own, created new: named by the process id and a count alone, a save
    // of another gate on the file in a container of its own (the same PID 1) wrote into it, or it
    // into theirs, and one gate renamed the other's bytes in as its own save, unseen.
    const tmp = `${target}.${randomBytes(8).toString('hex')}.tmp`
    try {
      const handle = await open(tmp, 'wx', 0o600)
      try {
        await handle.writeFile(text, 'utf8')
        await handle.sync()
        // Another process's write since this one's last: refused, nothing changed here or there.
        // The look and the rename hold the file's lock: two gates saving at once could otherwise
        // both find the file theirs and both rename, the first one's change answered as made and gone.
        const release = await takeFileLock(target)
        try {
          await checkFile()
          ensureOwn()
          await rename(tmp, target)
          // What the file is now, read from the file this save wrote (a rename changes its ctime).
          known = identityFrom(await handle.stat())
        } finally {
          release()
        }
      } finally {
        await handle.close()
      }
      await syncDirectory(dirname(target))
      lastSaveError = undefined
    } catch (err) {
      lastSaveError = (err as Error).message
      await unlink(tmp).catch(() => {})
      // The file was not replaced, and memory changes only after it is: nothing was written.
      throw new GrantsStoreUnavailableError(`cannot save ${target}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err, unwritten: true })
    }
  }

  /** Runs writes one after another; a failed write does not block the next. */
  function serial<T> (write: () => Promise<T>): Promise<T> {
    const run = writes.then(write, write)
    writes = run.catch(() => {})
    return run
  }

  async function write (projectId: number, grants: ProjectGrants | null, paths: string[], expectedVersion?: number, event?: AuditEvent, imported = false): Promise<number> {
    const current = versions.get(projectId) ?? 0
    const exists = records.has(projectId)
    if (expectedVersion !== undefined && expectedVersion !== (exists ? current : 0)) {
      throw new GrantsVersionConflictError(projectId, expectedVersion, exists ? current : 0)
    }
    const version = current + 1
    // The version the import last wrote: this one for its write, kept by any other (behind the
    // version then), gone with the document.
    const importedAt = imported ? version : grants === null ? undefined : records.get(projectId)?.imported
    if (file !== undefined) await save(serialize({ kind: 'project', projectId, grants, version, imported: importedAt }))
    commit(projectId, grants, version, importedAt)
    // The change's audit event with the change itself, as the Redis store's script appends it.
    if (event !== undefined) appendProjectAudit(event)
    listeners.emit({ kind: 'project', projectId, version, paths, publishedAt: now() })
    return version
  }

  /** write()'s twin for a root namespace: save, then memory, then the invalidation. */
  async function writeNamespace (namespacePath: string, settings: NamespaceSettings | null, expectedVersion?: number, event?: NamespaceAuditEvent): Promise<number> {
    const current = namespaceVersions.get(namespacePath) ?? 0
    const seen = namespaces.has(namespacePath) ? current : 0
    if (expectedVersion !== undefined && expectedVersion !== seen) throw new GrantsVersionConflictError(0, expectedVersion, seen)
    const version = current + 1
    if (file !== undefined) await save(serialize({ kind: 'namespace', namespacePath, settings, version }))
    commitNamespace(namespacePath, settings, version)
    if (event !== undefined) appendNamespaceAuditEvent(event)
    listeners.emit({ kind: 'namespace', namespace: namespacePath, version, publishedAt: now() })
    return version
  }

  function appendProjectAudit (event: AuditEvent): void {
    const list = audit.get(event.projectId) ?? []
    list.push(structuredClone(storedAuditEvent(event).event))
    if (list.length > kept) list.splice(0, list.length - kept)
    audit.set(event.projectId, list)
  }

  function appendNamespaceAuditEvent (event: NamespaceAuditEvent): void {
    const key = pathKey(event.namespacePath)
    const list = namespaceAudit.get(key) ?? []
    list.push(structuredClone(storedAuditEvent(event).event))
    if (list.length > kept) list.splice(0, list.length - kept)
    namespaceAudit.set(key, list)
  }

  function ensureOpen (): void {
    if (closed) throw new GrantsStoreUnavailableError('store is closed', { unwritten: true })
    ensureOwn()
  }

  return {
    kind: 'memory',
    async get (projectId) {
      ensureOpen()
      return records.get(projectId)?.stored ?? null
    },
    async resolvePath (path) {
      ensureOpen()
      const key = foldedPathKey(path)
      return key === null ? null : paths.get(key) ?? null
    },
    async put (input: ProjectGrants, putOptions: PutOptions = {}) {
      ensureOpen()
      const grants = checkStoredGrants(input)
      return await serial(async () => {
        const old = records.get(grants.projectId)
        const changed = [pathKey(grants.projectPath)]
        if (old !== undefined && pathKey(old.grants.projectPath) !== changed[0]) changed.push(pathKey(old.grants.projectPath))
        return await write(grants.projectId, grants, changed, putOptions.expectedVersion, putOptions.audit, putOptions.imported === true)
      })
    },
    async delete (projectId) {
      ensureOpen()
      return await serial(async () => {
        const old = records.get(projectId)
        if (old === undefined) return false
        await write(projectId, null, [pathKey(old.grants.projectPath)])
        return true
      })
    },
    async version (projectId) {
      ensureOpen()
      return versions.get(projectId) ?? 0
    },
    async appendAudit (event) {
      ensureOpen()
      appendProjectAudit(event)
    },
    async readAudit (projectId, { offset, limit }) {
      ensureOpen()
      const list = audit.get(projectId) ?? []
      const newestFirst = list.slice().reverse().slice(offset, offset + limit)
      return { total: list.length, events: newestFirst.map(e => structuredClone(e)) }
    },
    async getNamespace (namespacePath) {
      ensureOpen()
      return namespaces.get(pathKey(namespacePath))?.stored ?? null
    },
    async putNamespace (input, putOptions: NamespacePutOptions = {}) {
      ensureOpen()
      const settings = validateNamespaceSettings(input)
      return await serial(async () => await writeNamespace(settings.namespacePath, settings, putOptions.expectedVersion, putOptions.audit))
    },
    async deleteNamespace (namespacePath, putOptions: NamespacePutOptions = {}) {
      ensureOpen()
      const key = pathKey(namespacePath)
      return await serial(async () => {
        if (!namespaces.has(key)) {
          if (putOptions.expectedVersion !== undefined && putOptions.expectedVersion !== 0) throw new GrantsVersionConflictError(0, putOptions.expectedVersion, 0)
          return false
        }
        await writeNamespace(key, null, putOptions.expectedVersion, putOptions.audit)
        return true
      })
    },
    async appendNamespaceAudit (event) {
      ensureOpen()
      appendNamespaceAuditEvent(event)
    },
    async readNamespaceAudit (namespacePath, { offset, limit }) {
      ensureOpen()
      const list = namespaceAudit.get(pathKey(namespacePath)) ?? []
      const newestFirst = list.slice().reverse().slice(offset, offset + limit)
      return { total: list.length, events: newestFirst.map(e => structuredClone(e)) }
    },
    subscribe: listener => listeners.add(listener),
    recordUsage: usage.recordUsage,
    readUsage: usage.readUsage,
    readDroppedUsage: usage.readDroppedUsage,
    async health (): Promise<StoreHealth> {
      // Looked at without waiting: a save under way (a slow disk) must not hold the probe.
      void lookAtFile()
      if (foreign !== undefined) return { ok: false, kind: 'memory', mode: 'file', subscribed: false, detail: foreign }
      return {
        ok: !closed && lastSaveError === undefined,
        kind: 'memory',
        mode: file === undefined ? 'volatile' : 'file',
        subscribed: !closed,
        ...(closed ? { detail: 'closed' } : lastSaveError !== undefined ? { detail: `last save failed: ${lastSaveError}` } : {})
      }
    },
    async close () {
      if (closed) return
      closed = true
      clearInterval(watch)
      await writes
      listeners.clear()
    }
  }
}

interface LoadedState {
  readonly projects: Array<{ grants: ProjectGrants, version: number, imported?: number }>
  readonly namespaces: Array<{ settings: NamespaceSettings, version: number }>
  readonly paths: Readonly<Record<string, number>>
}

async function loadFile (file: string): Promise<LoadedState> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { projects: [], namespaces: [], paths: {} }
    throw new GrantsError('GRANTS_STORE_UNAVAILABLE', `cannot read ${file}: ${(err as Error).message}`, { cause: err })
  }
  // A file that does not parse stops the start: silently starting empty would drop every grant.
  let doc: Partial<FileDocument>
  try {
    doc = JSON.parse(text) as Partial<FileDocument>
  } catch (err) {
    throw new GrantsError('GRANTS_INVALID', `${file} is not valid JSON: ${(err as Error).message}`)
  }
  const withNamespaces = doc?.formatVersion === FORMAT_VERSION_NAMESPACES
  if (doc?.format !== FORMAT || (doc.formatVersion !== FORMAT_VERSION && !withNamespaces) || !Array.isArray(doc.projects) ||
    (withNamespaces && !Array.isArray(doc.namespaces))) {
    throw new GrantsError('GRANTS_INVALID', `${file} is not a ${FORMAT} file of format version ${FORMAT_VERSION} or ${FORMAT_VERSION_NAMESPACES}`)
  }
  const checkVersion = (version: number): void => {
    if (!Number.isSafeInteger(version) || version < 1) throw new Error('version must be a positive integer')
  }
  const projects = doc.projects.map((item, i) => {
    try {
      checkVersion(item.version)
      // The import's record of a document; absent in files written before the gate kept one.
      if (item.imported !== undefined && (!Number.isSafeInteger(item.imported) || item.imported < 1 || item.imported > item.version)) {
        throw new Error('imported must be a positive integer, at most version')
      }
      return { grants: checkStoredGrants(item.grants), version: item.version, ...(item.imported === undefined ? {} : { imported: item.imported }) }
    } catch (err) {
      throw new GrantsError('GRANTS_INVALID', `${file}: projects[${i}]: ${(err as Error).message}`)
    }
  })
  const namespaces = (withNamespaces ? doc.namespaces! : []).map((item, i) => {
    try {
      checkVersion(item.version)
      return { settings: validateNamespaceSettings(item.settings), version: item.version }
    } catch (err) {
      throw new GrantsError('GRANTS_INVALID', `${file}: namespaces[${i}]: ${(err as Error).message}`)
    }
  })
  const paths = doc.paths ?? {}
  if (typeof paths !== 'object' || paths === null || Array.isArray(paths) ||
    Object.values(paths).some(id => typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1)) {
    throw new GrantsError('GRANTS_INVALID', `${file}: paths must map paths to project ids`)
  }
  return { projects, namespaces, paths }
}

/**
 * A crash between writing and renaming leaves a temp file behind (a lock too, when it came after
 * the lock was taken); it is never read. Only those left long enough ago are removed: a start beside
 * a gate still running on the file (the old replica of a rollout) once removed that gate's save
 * and lock from under it, and its save, answered 503, was lost. A lock left by a crash just now is
 * taken over once stale (takeFileLock). Each is removed as the very file looked at
 * (removeIfLeftBehind): a stale lock a running gate takes over meanwhile becomes that gate's.
 */
async function removeLeftoverTempFiles (file: string): Promise<void> {
  const dir = dirname(file)
  const prefix = basename(file) + '.'
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue
    try {
      removeIfLeftBehind(join(dir, name))
    } catch { /* gone meanwhile, or not ours to remove */ }
  }
}

async function syncDirectory (dir: string): Promise<void> {
  // Makes the rename itself durable; not every platform lets a directory be fsynced.
  try {
    const handle = await open(dir, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch {}
}
