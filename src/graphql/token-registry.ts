// Fine-grained token permissions registered by the operator, for tokens GitLab will not describe
// to the gate: GitLab shows a fine-grained token its own scopes only when the token holds
// "Personal Access Token: Read" (`read_personal_access_token`, User boundary), and
// `GET /personal_access_tokens/self` left the scopes out before it presented them as the
// get-by-id route does (docs/graphql-tokens.md). The operator registers such a token **by its
// SHA-256**, never the token itself, with the scopes GitLab's token page shows:
//
//   PUT    /api/v4/gate/graphql_token_scopes/:sha256   {"user_id": 7, "granular_scopes": [{"access": "selected_memberships", "permissions": ["read_project"], "group_id": 5}]}
//   GET    /api/v4/gate/graphql_token_scopes/:sha256
//   GET    /api/v4/gate/graphql_token_scopes
//   DELETE /api/v4/gate/graphql_token_scopes/:sha256
//
// Only the operator token (GATE_ADMIN_TOKEN) may call these. The store is in memory, optionally
// kept in a JSON file (GATE_GRAPHQL_TOKEN_REGISTRY_FILE) so it survives a restart: read once at
// start, written whole (a new file, synced, then renamed over the old one) before a change is
// made in memory, so a failed write changes nothing. A file the gate may not write (a read-only
// mount such as a Kubernetes Secret, or a file without its owner's write bit) is the copy every
// replica reads: changes through the API are refused (GRAPHQL_TOKEN_REGISTRY_READ_ONLY), since
// they would reach one replica only and be lost on its restart. A writable file is this gate's
// alone: the registry remembers it as it last read or wrote it, and looks again before each change
// and each read of a registration; a file another process wrote (a second gate on a shared volume)
// makes it answer no registration and refuse changes (GRAPHQL_TOKEN_REGISTRY_CHANGED) until the
// gate is restarted, where its copy once kept a registration removed through the other gate, and
// its next change wrote that registration back into the file. A read-only file is looked at so
// too: changed (the Secret swapped in anew), it makes the gate answer no registration until it is
// restarted, where its copy once kept answering a registration the Secret no longer holds.

import { accessSync, closeSync, constants, fstatSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { identityFrom, identityNow, identityOf, linkedFileOf, otherNamesOf, sameIdentity, takeFileLockSync, type FileIdentity } from '../file-identity.ts'
import { errors, GateError, type ErrorCode, type FieldIssue } from '../errors.ts'
import { SCOPE_ACCESSES, type ScopeAccess } from './token-scopes.ts'
import { quoted } from '../text.ts'

/** A scope as GitLab's API writes it (`granular_scopes[]` of a token): GitLab's permission names. */
export interface RegisteredScope {
  readonly access: ScopeAccess
  readonly permissions: readonly string[]
  readonly project_id: number | null
  readonly group_id: number | null
}

export interface RegisteredToken {
  readonly user_id: number | null
  readonly granular_scopes: readonly RegisteredScope[]
  readonly updated_at: string
}

export interface TokenRegistry {
  /** The registration of a token hash (lower-case hex SHA-256), if any. */
  get (hash: string): RegisteredToken | undefined
  set (hash: string, entry: RegisteredToken): void
  delete (hash: string): boolean
  list (): ReadonlyArray<readonly [string, RegisteredToken]>
  /** Called after every change (the resolver forgets what it cached). */
  onChange (listener: () => void): void
  /**
   * Whether what the registry answers is still what its file says: false once another process
   * wrote a writable file (the listeners are called the first time), true otherwise. An answer
   * kept from a registration stands only while this holds.
   */
  current (): boolean
  /** Read from a file the gate may not write: `set` and `delete` throw GRAPHQL_TOKEN_REGISTRY_READ_ONLY. */
  readonly readOnly: boolean
}

export const TOKEN_HASH = /^[0-9a-f]{64}$/
const MAX_SCOPES = 64
const MAX_PERMISSIONS = 512

export interface TokenRegistryOptions {
  /** JSON file the registrations are read from at start and, when writable, saved to. */
  readonly file?: string
}

/**
 * The registry, in memory or kept in `file`. Throws TypeError (the message names the file) when
 * the file exists but cannot be read or is not a registry, or its directory does not exist: a
 * registry silently started empty would refuse, or worse, forget what the operator meant.
 */
export function createTokenRegistry (options: TokenRegistryOptions = {}): TokenRegistry {
  const { file } = options
  let entries = new Map<string, RegisteredToken>()
  const listeners: Array<() => void> = []
  // The file as this gate last read or wrote it (null: none), taken before the read.
  let known: FileIdentity | null = null
  if (file !== undefined) {
    try { known = identityOf(file) } catch { /* the read below names what is wrong */ }
  }
  if (file !== undefined) entries = readRegistryFile(file)
  // Where changes are saved: the file, or the one a symbolic link there names. Renamed over the
  // link, a save would put a file of its own beside it, and the file the link names (on the volume
  // that keeps it, or another gate's) would keep the old registrations for every start after.
  const saveTo = file === undefined ? undefined : linkedFileIn(file)
  const readOnly = saveTo !== undefined && !mayWrite(saveTo)
  // A file the gate writes has one name: a save replaces one only (a read-only one is never written).
  const named = readOnly || file === undefined ? undefined : otherNamesOf(file, known)
  if (named !== undefined) throw new TypeError(`cannot use the token registry: ${named}`)
  // Why the file is no longer this gate's (another process wrote it): nothing is answered from the copy.
  let foreign: string | undefined

  /**
   * Whether the file is still the one this gate last read or wrote; the first time it is not, the
   * caches forget. A read-only file too: it is changed by changing it (a Secret the kubelet swaps,
   * a gate that may write the volume), and a registration removed there was answered from this
   * gate's copy for as long as it ran.
   */
  const own = (): boolean => {
    if (file === undefined) return true
    if (foreign !== undefined) return false
    const now = identityNow(file)
    const named = readOnly ? undefined : otherNamesOf(file, now)
    if (named === undefined && sameIdentity(now, known)) return true
    foreign = named !== undefined ? `the token registry ${named}` : `the token registry ${file} was ${readOnly ? 'changed' : 'written by another process'} since this gate read it`
    for (const listener of listeners) listener()
    return false
  }
  const changed = (): GateError => readOnly
    ? new GateError('GRAPHQL_TOKEN_REGISTRY_READ_ONLY')
    : new GateError('GRAPHQL_TOKEN_REGISTRY_CHANGED', `${foreign ?? 'the token registry was written by another process'}: restart the gate to read it`)

  /** Writes `next` whole; throws GateError, leaving the file and the memory as they were. */
  const persist = (next: ReadonlyMap<string, RegisteredToken>): void => {
    if (readOnly) throw new GateError('GRAPHQL_TOKEN_REGISTRY_READ_ONLY')
    if (saveTo === undefined) return
    const tmp = `${saveTo}.tmp`
    // The whole save holds the file's lock: two gates saving at once could otherwise both find the
    // file theirs and both rename (or one rename the other's temporary file, removed and made anew
    // under the same name), the first one's change answered as made and gone from the file.
    let release: () => void
    try {
      release = takeFileLockSync(saveTo)
    } catch (err) {
      // Another gate is saving (its temporary file is not this one's to remove).
      throw new GateError('GRAPHQL_TOKEN_REGISTRY_WRITE_FAILED', `cannot write the token registry ${file}: ${(err as Error).message}`, { publicMessage: errors.GRAPHQL_TOKEN_REGISTRY_WRITE_FAILED.message, cause: err })
    }
    try {
      rmSync(tmp, { force: true })
      // A new file each time, so the mode is 0600 whatever an older one had.
      const fd = openSync(tmp, 'wx', 0o600)
      try {
        writeSync(fd, JSON.stringify(Object.fromEntries(next), null, 2) + '\n')
        fsyncSync(fd)
        // Another process's write since this gate's last: refused, nothing changed here or there.
        if (!own()) {
          rmSync(tmp, { force: true })
          throw changed()
        }
        renameSync(tmp, saveTo)
        // What the file is now, read from the file this save wrote (a rename changes its ctime).
        known = identityFrom(fstatSync(fd))
      } finally {
        closeSync(fd)
      }
    } catch (err) {
      if (err instanceof GateError) throw err
      try { rmSync(tmp, { force: true }) } catch { /* the write failed already; nothing more to undo */ }
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
      // A file system that became read-only (remounted) is what the read-only answer says.
      const answer: ErrorCode = code === 'EROFS' ? 'GRAPHQL_TOKEN_REGISTRY_READ_ONLY' : 'GRAPHQL_TOKEN_REGISTRY_WRITE_FAILED'
      throw new GateError(answer, `cannot write the token registry ${file}: ${code}`, { publicMessage: errors[answer].message, cause: err })
    } finally {
      release()
    }
  }
  const change = (next: Map<string, RegisteredToken>): void => {
    persist(next)
    entries = next
    for (const listener of listeners) listener()
  }
  return {
    readOnly,
    get: hash => own() ? entries.get(hash) : undefined,
    set (hash, entry) {
      if (!own()) throw changed()
      const next = new Map(entries)
      next.set(hash, entry)
      change(next)
    },
    delete (hash) {
      if (!own()) throw changed()
      if (!entries.has(hash)) return false
      const next = new Map(entries)
      next.delete(hash)
      change(next)
      return true
    },
    list: () => own() ? [...entries].sort(([a], [b]) => a < b ? -1 : 1) : [],
    onChange (listener) {
      listeners.push(listener)
    },
    current: own
  }
}

/** Where saves of the registry go (linkedFileOf); TypeError naming the path where that cannot be told. */
function linkedFileIn (file: string): string {
  try {
    return linkedFileOf(file)
  } catch (err) {
    throw new TypeError(`cannot read the token registry ${file}: ${(err as Error).message}`)
  }
}

/** The registrations of a registry file; a missing file is an empty registry. */
function readRegistryFile (file: string): Map<string, RegisteredToken> {
  const entries = new Map<string, RegisteredToken>()
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT') throw new TypeError(`cannot read the token registry ${file}: ${code ?? (err as Error).message}`)
    // Created on the first change: its directory must exist, or that change would fail.
    try {
      if (!statSync(dirname(file)).isDirectory()) throw new Error('not a directory')
    } catch {
      throw new TypeError(`the token registry ${file} does not exist, nor does its directory ${dirname(file)}`)
    }
    return entries
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    throw new TypeError(`the token registry ${file} is not JSON`)
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new TypeError(`the token registry ${file} is not a JSON object of registrations by token SHA-256`)
  for (const [hash, raw] of Object.entries(doc)) {
    const parsed = parseRegistration(raw, '')
    // Never echo more than a hash's length of a key: a token pasted by mistake stays out of logs.
    if (!TOKEN_HASH.test(hash)) throw new TypeError(`the token registry ${file} has a key that is not a lower-case hex SHA-256 (a token's hash, never the token)`)
    if (!parsed.ok) throw new TypeError(`the token registry ${file} has an invalid entry ${hash}: ${parsed.issues.map(i => `${i.path === '' ? '(entry)' : i.path} ${i.message}`).join('; ')}`)
    const updatedAt = (raw as { updated_at?: unknown }).updated_at
    entries.set(hash, { ...parsed.value, updated_at: typeof updatedAt === 'string' ? updatedAt : new Date(0).toISOString() })
  }
  return entries
}

/**
 * Whether the gate may replace `file`: its directory writable (the new file is renamed over it)
 * and the file, when it exists, writable and carrying its owner's write bit. The bit is read
 * too because access() answers yes to root for any file not on a read-only file system.
 */
function mayWrite (file: string): boolean {
  try {
    accessSync(dirname(file), constants.W_OK)
    accessSync(file, constants.W_OK)
    return (statSync(file).mode & 0o200) !== 0
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' && (err as NodeJS.ErrnoException).path === file
  }
}

/** Reads a registration body; `prefix` names fields in issues. */
export function parseRegistration (body: unknown, prefix = ''): { ok: true, value: Omit<RegisteredToken, 'updated_at'> } | { ok: false, issues: FieldIssue[] } {
  const issues: FieldIssue[] = []
  const at = (field: string): string => prefix === '' ? field : `${prefix}.${field}`
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return { ok: false, issues: [{ path: prefix, message: 'must be a JSON object' }] }
  const b = body as Record<string, unknown>
  for (const key of Object.keys(b)) {
    // A field name is the client's text: quoted as every answer quotes it (short, a token [token]).
    if (key !== 'user_id' && key !== 'granular_scopes' && key !== 'updated_at') issues.push({ path: at(quoted(key)), message: 'is not a known field' })
  }
  const positive = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v > 0
  if (b.user_id !== undefined && b.user_id !== null && !positive(b.user_id)) issues.push({ path: at('user_id'), message: 'must be a user id or null' })
  const scopes: RegisteredScope[] = []
  if (!Array.isArray(b.granular_scopes)) issues.push({ path: at('granular_scopes'), message: 'must be a list' })
  else if (b.granular_scopes.length > MAX_SCOPES) issues.push({ path: at('granular_scopes'), message: `must hold at most ${MAX_SCOPES} scopes` })
  else {
    b.granular_scopes.forEach((raw: unknown, i) => {
      const where = at(`granular_scopes[${i}]`)
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        issues.push({ path: where, message: 'must be an object' })
        return
      }
      const s = raw as Record<string, unknown>
      for (const key of Object.keys(s)) {
        if (!['access', 'permissions', 'project_id', 'group_id'].includes(key)) issues.push({ path: `${where}.${quoted(key)}`, message: 'is not a known field' })
      }
      const access = s.access
      if (typeof access !== 'string' || !(SCOPE_ACCESSES as readonly string[]).includes(access)) issues.push({ path: `${where}.access`, message: `must be one of ${SCOPE_ACCESSES.join(', ')}` })
      const permissions = s.permissions
      if (!Array.isArray(permissions) || permissions.length > MAX_PERMISSIONS || !permissions.every(p => typeof p === 'string' && /^[a-z][a-z0-9_]{0,99}$/.test(p))) {
        issues.push({ path: `${where}.permissions`, message: 'must be a list of permission names (lower case, digits and _)' })
      }
      const projectId = s.project_id ?? null
      const groupId = s.group_id ?? null
      if (projectId !== null && !positive(projectId)) issues.push({ path: `${where}.project_id`, message: 'must be a project id or null' })
      if (groupId !== null && !positive(groupId)) issues.push({ path: `${where}.group_id`, message: 'must be a group id or null' })
      // GitLab attaches a selected scope to exactly one project or group, and the others to none.
      if (access === 'selected_memberships' && (projectId === null) === (groupId === null)) issues.push({ path: where, message: 'a selected_memberships scope names exactly one of project_id and group_id' })
      if (access !== 'selected_memberships' && (projectId !== null || groupId !== null)) issues.push({ path: where, message: 'only a selected_memberships scope names a project or group' })
      scopes.push({ access: access as ScopeAccess, permissions: Array.isArray(permissions) ? [...new Set(permissions as string[])] : [], project_id: projectId as number | null, group_id: groupId as number | null })
    })
  }
  // Personal projects are the user's: without the user, such a scope could reach nothing.
  if (scopes.some(sc => sc.access === 'personal_projects') && (b.user_id === undefined || b.user_id === null)) issues.push({ path: at('user_id'), message: 'is needed by a personal_projects scope' })
  if (issues.length > 0) return { ok: false, issues }
  return { ok: true, value: { user_id: (b.user_id ?? null) as number | null, granular_scopes: scopes } }
}

export interface RegistryRequest {
  readonly method: string
  /** The path after `/api/v4`, canonical: `/gate/graphql_token_scopes/<sha256>`. */
  readonly path: string
  /** Whether the caller presented the operator token (src/admin/auth.ts `findCaller` → `operator`). */
  readonly caller: 'operator' | 'user' | 'none'
  /** The JSON body, parsed (PUT), or undefined. */
  readonly body?: unknown
  readonly now?: () => Date
}

export interface RegistryAnswer {
  readonly status: number
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>>
}

export const REGISTRY_PATH = '/gate/graphql_token_scopes'

const REGISTRY_PREFIX = `${REGISTRY_PATH}/`

/** Whether a path (after `/api/v4`) is the registry's. Hot path: every API request asks. */
export function isRegistryPath (path: string): boolean {
  return path === REGISTRY_PATH || path.startsWith(REGISTRY_PREFIX)
}

function refuse (code: ErrorCode, extra: { issues?: readonly FieldIssue[], headers?: Readonly<Record<string, string>> } = {}): RegistryAnswer {
  return {
    status: errors[code].status,
    body: { message: errors[code].message, code, ...(extra.issues === undefined ? {} : { errors: extra.issues.map(i => ({ field: i.path, message: i.message })) }) },
    ...(extra.headers === undefined ? {} : { headers: extra.headers })
  }
}

/** Answers one request to the registry's endpoints. Never echoes anything but hashes. */
export function handleRegistryRequest (registry: TokenRegistry, request: RegistryRequest): RegistryAnswer {
  if (!isRegistryPath(request.path)) return refuse('ADMIN_NOT_FOUND')
  if (request.caller === 'none') return refuse('ADMIN_UNAUTHENTICATED')
  if (request.caller !== 'operator') return refuse('GRAPHQL_TOKEN_REGISTRY_OPERATOR_ONLY')
  // Read from a file every replica shares: a change here would reach this replica only.
  if (registry.readOnly && (request.method === 'PUT' || request.method === 'DELETE')) return refuse('GRAPHQL_TOKEN_REGISTRY_READ_ONLY')
  const rest = request.path.slice(REGISTRY_PATH.length)
  if (rest === '' || rest === '/') {
    if (request.method !== 'GET') return refuse('ADMIN_METHOD_NOT_ALLOWED', { headers: { allow: 'GET' } })
    return { status: 200, body: registry.list().map(([hash, entry]) => ({ token_sha256: hash, ...entry })) }
  }
  const hash = rest.slice(1).toLowerCase()
  if (!TOKEN_HASH.test(hash)) return refuse('ADMIN_VALIDATION_FAILED', { issues: [{ path: 'token_sha256', message: 'must be the 64 hex digits of the token\'s SHA-256, never the token' }] })
  switch (request.method) {
    case 'GET': {
      const entry = registry.get(hash)
      return entry === undefined ? refuse('ADMIN_NOT_FOUND') : { status: 200, body: { token_sha256: hash, ...entry } }
    }
    case 'PUT': {
      const parsed = parseRegistration(request.body)
      if (!parsed.ok) return refuse('ADMIN_VALIDATION_FAILED', { issues: parsed.issues })
      const entry: RegisteredToken = { ...parsed.value, updated_at: (request.now?.() ?? new Date()).toISOString() }
      registry.set(hash, entry)
      return { status: 200, body: { token_sha256: hash, ...entry } }
    }
    case 'DELETE':
      return registry.delete(hash) ? { status: 204 } : refuse('ADMIN_NOT_FOUND')
    default:
      return refuse('ADMIN_METHOD_NOT_ALLOWED', { headers: { allow: 'GET, PUT, DELETE' } })
  }
}
