// The one interface every grants store implements (memory-store.ts, redis-store.ts), and the
// invalidation message they publish. The cache (cache.ts) is the only reader on the request
// path; the configuration API writes through `put` / `delete`.

import type { NamespaceSettings, ProjectGrants, StoredGrants, StoredNamespaceSettings } from './model.ts'
import type { UsageStore } from './usage-store.ts'

export type InvalidationEvent =
  /** Project `projectId` was written or deleted; its version is now `version`. */
  | {
    readonly kind: 'project'
    readonly projectId: number
    readonly version: number
    /** Lower-cased full paths whose resolution may have changed (new and old path). */
    readonly paths: readonly string[]
    /** Writer's wall clock (ms since epoch) when it published: the lag metric's start. */
    readonly publishedAt: number
  }
  /** Root namespace `namespace` (lower-cased path) had its settings written or deleted. */
  | {
    readonly kind: 'namespace'
    readonly namespace: string
    readonly version: number
    readonly publishedAt: number
  }
  /** Messages may have been missed (the subscription was lost and is back): drop everything. */
  | { readonly kind: 'reset', readonly reason: string }
  /**
   * The subscription is down: messages are missed from now on, until a `reset` says it is back.
   * Sent when it goes, and again for each new cause while it stays down (a SUBSCRIBE refused).
   */
  | { readonly kind: 'lost', readonly reason: string }

export type InvalidationListener = (event: InvalidationEvent) => void

export interface PutOptions {
  /** Write only if the project is at this version (0: does not exist yet). */
  readonly expectedVersion?: number
  /**
   * The change's audit event, appended to the project's audit log in the same atomic step as the
   * write: a write is never committed without its record, nor a record without its write (a
   * write whose answer is lost, a timeout after Redis ran it, is still in the log).
   */
  readonly audit?: AuditEvent
  /**
   * The write is `import-allowlists`' (GitLab's allowlist copied in): the store records the version
   * it produces as the document's `importedVersion`, in the same step. Any other write leaves the
   * record behind its version, which is how a later import knows the document was changed through
   * the configuration API since (src/admin/import.ts).
   */
  readonly imported?: boolean
}

/** PutOptions of a root namespace's settings: the audit event is the namespace's. */
export interface NamespacePutOptions {
  readonly expectedVersion?: number
  readonly audit?: NamespaceAuditEvent
}

export interface StoreHealth {
  readonly ok: boolean
  readonly kind: 'memory' | 'redis'
  /** Redis: 'standalone' | 'sentinel' | 'cluster'; memory: 'file' | 'volatile'. */
  readonly mode: string
  /** Whether invalidations are being received right now (readiness fails while they are not). */
  readonly subscribed: boolean
  /** Redis: the `host:port` the invalidation subscription is connected to. */
  readonly subscribedTo?: string
  readonly latencyMs?: number
  readonly detail?: string
}

/**
 * One change made through the configuration API (src/admin/): who, which project, the
 * settings before and after, when, and the request it came with. Appended to its project's log,
 * which keeps the newest AUDIT_EVENTS_KEPT.
 */
export interface AuditEvent {
  readonly projectId: number
  /** A GitLab user proven Maintainer, or the operator token (GATE_ADMIN_TOKEN). */
  readonly actor: { readonly kind: 'user', readonly id: number, readonly username?: string } | { readonly kind: 'operator' }
  /** What was done, e.g. `update_job_token_permissions`, `add_project_to_allowlist`. */
  readonly action: string
  readonly before: unknown
  readonly after: unknown
  /** ISO 8601. */
  readonly time: string
  readonly requestId: string
}

export interface AuditPage<E = AuditEvent> {
  /** Events of the project (or root namespace) in all. */
  readonly total: number
  /** Newest first. */
  readonly events: readonly E[]
}

/** A change of a root namespace's settings: as AuditEvent, the namespace in place of the project. */
export interface NamespaceAuditEvent extends Omit<AuditEvent, 'projectId'> {
  /** The root namespace's lower-cased path. */
  readonly namespacePath: string
}

/**
 * Audit events a store keeps per project and per root namespace, the newest: any GitLab user is a
 * Maintainer of their own projects and can write one event per configuration call, and a log that
 * is never trimmed grew Redis (or, with the memory store, the gate) without bound. Every event is
 * also a log line (`"audit": true`), which is the complete record.
 */
export const AUDIT_EVENTS_KEPT = 1000

/**
 * The longest audit event a store keeps, its JSON in bytes. An event holds the settings before and
 * after a change, and nothing bounded what it carried: a whole allowlist (an import's) made events
 * of hundreds of kilobytes, and a page of them a reply that held the Redis store's one command
 * connection. With the events kept (AUDIT_EVENTS_KEPT) it bounds a whole log, which a page read
 * measures in Redis before it reads (redis-store.ts).
 */
export const MAX_AUDIT_EVENT_BYTES = 8 * 1024

/**
 * `event` as a store keeps it: whole within MAX_AUDIT_EVENT_BYTES; past that, with `before` and
 * `after` each replaced by `{"omitted": "<what>"}`, which says how large the event was. The audit
 * log line (`"audit": true`) always holds the event whole.
 */
export function storedAuditEvent<E extends AuditEvent | NamespaceAuditEvent> (event: E): { readonly event: E, readonly json: string } {
  const json = JSON.stringify(event)
  const bytes = Buffer.byteLength(json)
  if (bytes <= MAX_AUDIT_EVENT_BYTES) return { event, json }
  const omitted = { omitted: `an event of ${bytes} bytes, more than the ${MAX_AUDIT_EVENT_BYTES} the store keeps of one: the audit log line of request ${event.requestId} holds it whole` }
  const kept = { ...event, before: omitted, after: omitted }
  return { event: kept, json: JSON.stringify(kept) }
}

/** A store's `auditEventsKept` option, checked: a positive whole number, default AUDIT_EVENTS_KEPT. */
export function auditEventsKept (value: number | undefined): number {
  const kept = value ?? AUDIT_EVENTS_KEPT
  if (!Number.isSafeInteger(kept) || kept < 1) throw new TypeError('auditEventsKept must be a positive whole number')
  return kept
}

export interface GrantStore {
  readonly kind: 'memory' | 'redis'
  /** The project's grants with their version, or null when the store knows nothing of it. */
  get (projectId: number): Promise<StoredGrants | null>
  /** Full path → id, case-insensitive; null when no stored project has that path. */
  resolvePath (path: string): Promise<number | null>
  /**
   * Replaces the project's grants atomically, bumps its version and publishes an invalidation.
   * The document must come from validateProjectGrants(). Resolves with the new version.
   */
  put (grants: ProjectGrants, options?: PutOptions): Promise<number>
  /** Removes the project (bumping the version, publishing); false if it was not stored. */
  delete (projectId: number): Promise<boolean>
  /** Current version; 0 for a project never written. */
  version (projectId: number): Promise<number>
  /** Appends an audit event to the project's log, which keeps the newest AUDIT_EVENTS_KEPT. */
  appendAudit (event: AuditEvent): Promise<void>
  /** Reads the project's audit events, newest first, skipping `offset` and returning at most `limit`. */
  readAudit (projectId: number, page: { readonly offset: number, readonly limit: number }): Promise<AuditPage>
  /** The root namespace's settings (key: lower-cased path) with their version, or null. */
  getNamespace (namespacePath: string): Promise<StoredNamespaceSettings | null>
  /**
   * Replaces a root namespace's settings (from validateNamespaceSettings()) atomically, bumps its
   * version and publishes an invalidation, as put() does for projects.
   */
  putNamespace (settings: NamespaceSettings, options?: NamespacePutOptions): Promise<number>
  /** Removes a root namespace's settings (bumping the version, publishing); false if none. */
  deleteNamespace (namespacePath: string, options?: NamespacePutOptions): Promise<boolean>
  /** Appends to, and reads (newest first), the root namespace's audit log (the newest AUDIT_EVENTS_KEPT). */
  appendNamespaceAudit (event: NamespaceAuditEvent): Promise<void>
  readNamespaceAudit (namespacePath: string, page: { readonly offset: number, readonly limit: number }): Promise<AuditPage<NamespaceAuditEvent>>
  /** Registers a listener for invalidations (its own writes included); returns the unsubscribe. */
  subscribe (listener: InvalidationListener): () => void
  /** Least-privilege usage (UsageStore, usage-store.ts): optional, both shipped stores keep it. */
  recordUsage?: UsageStore['recordUsage']
  readUsage?: UsageStore['readUsage']
  readDroppedUsage?: UsageStore['readDroppedUsage']
  health (): Promise<StoreHealth>
  close (): Promise<void>
}

/**
 * Wire format of an invalidation message, short because every replica parses every write:
 * `p` names a project, `n` a root namespace.
 * The Redis store's Lua scripts write it (in the same step as the write), this reads it.
 */
interface WireMessage { p: number, n: string, v: number, t: number, paths?: string[] }

/** Parses a wire message; a malformed one becomes a reset, because dropping everything is safe. */
export function decodeInvalidation (text: string): InvalidationEvent {
  try {
    const m = JSON.parse(text) as Partial<WireMessage>
    // A root namespace's settings: `{"n":"<path>","v":...,"t":...}`.
    if (typeof m.n === 'string' && Number.isSafeInteger(m.v) && typeof m.t === 'number') {
      return { kind: 'namespace', namespace: m.n, version: m.v!, publishedAt: m.t }
    }
    if (Number.isSafeInteger(m.p) && Number.isSafeInteger(m.v) && typeof m.t === 'number') {
      const paths = Array.isArray(m.paths) ? m.paths.filter((p): p is string => typeof p === 'string') : []
      return { kind: 'project', projectId: m.p!, version: m.v!, paths, publishedAt: m.t }
    }
  } catch {}
  return { kind: 'reset', reason: 'malformed invalidation message' }
}

/**
 * A small listener set that isolates listeners from each other's exceptions. A listener added
 * while the subscription is down (after a `lost`, before the `reset`) is told so at once.
 */
export function createListeners (): { add: (l: InvalidationListener) => () => void, emit: (e: InvalidationEvent) => void, clear: () => void } {
  const listeners = new Set<InvalidationListener>()
  let down: InvalidationEvent | undefined
  return {
    add (listener) {
      listeners.add(listener)
      if (down !== undefined) listener(down)
      return () => { listeners.delete(listener) }
    },
    emit (event) {
      if (event.kind === 'lost') down = event
      else if (event.kind === 'reset') down = undefined
      for (const listener of listeners) {
        try {
          listener(event)
        } catch (err) {
          // A listener bug must not stop the others from invalidating.
          process.emitWarning(`grants invalidation listener failed: ${(err as Error).message}`)
        }
      }
    },
    clear () { listeners.clear() }
  }
}
