// The per-replica cache in front of the grants store: what every job-token request reads.
//
// - Fresh entries (younger than ttlMs) are answered from memory; unknown projects are cached
//   too (negative entries), so a flood of requests for an unconfigured project is not a flood
//   of store reads.
// - Concurrent misses for one key share one store call (single flight).
// - Every store write publishes an invalidation; the entry (and any path it names) is dropped
//   when it arrives, and an in-flight read started before it is not cached. A `reset` (the
//   subscription was lost and is back) flushes everything.
// - Subscription down (`lost`, until the `reset`): no entry is fresh, as messages are missed; every
//   read asks the store (single flight still), and a store that fails is met as below.
// - Store down: an entry is served for at most staleWindowMs after it stopped being fresh; past
//   that the read fails with GrantsStoreUnavailableError (503). Never an allow by default.
// - A question asked of many projects at once (anyOf: does any project of a group's listing keep
//   a package format from job tokens?) has its answer kept beside the listing, for no longer than
//   the oldest answer it was drawn from would be kept, and dropped with any of them.

import { createHash } from 'node:crypto'
import { countedLru } from '../lru.ts'
import { foldedPathKey, isRootNamespaceKey, pathKey, type StoredGrants, type StoredNamespaceSettings } from './model.ts'
import { GrantsStoreUnavailableError } from './errors.ts'
import type { GrantStore, InvalidationEvent } from './store.ts'

export interface GrantCacheOptions {
  readonly store: GrantStore
  /** How long an answer is trusted without asking the store. Default 10 000. */
  readonly ttlMs?: number
  /** The same for "unknown project" and "unknown path". Default ttlMs. */
  readonly negativeTtlMs?: number
  /** How long past its TTL an entry may be served while the store fails. Default 30 000. */
  readonly staleWindowMs?: number
  /** A store read taking longer counts as a failure. Default 2000. */
  readonly loadTimeoutMs?: number
  /** Entries kept per kind (projects, paths, root namespaces), and as many "nothing stored" answers. Default 10 000. */
  readonly maxEntries?: number
  /** Called for each invalidation with its lag (receiver's wall clock − writer's), for a histogram. */
  readonly onInvalidation?: (lagMs: number) => void
  /** Monotonic clock for ages (tests). Default performance.now. */
  readonly now?: () => number
  /** Wall clock for invalidation lag. Default Date.now. */
  readonly wallClock?: () => number
}

export interface GrantCacheStats {
  readonly hits: number
  readonly negativeHits: number
  readonly misses: number
  readonly staleServed: number
  readonly singleFlightWaits: number
  readonly storeErrors: number
  readonly failClosed: number
  readonly invalidationsReceived: number
  readonly resets: number
  /** Times the invalidation subscription went down (answers then read from the store until it is back). */
  readonly subscriptionLosses: number
  /** Lag of the last invalidation received, ms; -1 before the first. */
  readonly lastInvalidationLagMs: number
  readonly projectEntries: number
  readonly pathEntries: number
  readonly namespaceEntries: number
}

export interface GrantCache {
  /**
   * The accessed project's grants, null when the store knows nothing of it. Hot path: a fresh
   * entry is answered without a promise; only a read of the store returns one.
   */
  get (projectId: number): StoredGrants | null | Promise<StoredGrants | null>
  /** Full path → id, null when unknown: every spelling GitLab's LOWER() may match a stored path to (foldedPathKey). */
  resolvePath (path: string): Promise<number | null>
  /**
   * A root namespace's settings (by its path, case-insensitive), null when none are stored. Same
   * freshness, single flight, stale window and invalidation as projects.
   */
  namespace (namespacePath: string): Promise<StoredNamespaceSettings | null>
  /**
   * Whether `test` holds for any of the projects `ids`, their grants read as get() reads them.
   * `ids` is a frozen listing kept elsewhere (a group's projects): the answer is kept beside it, by
   * its identity and `kind` (what `test` asks: one kind, one test), while the listing lives and for
   * no longer than the oldest project answer it was drawn from would have been kept (its TTL, never
   * a stale window), and dropped when any of the projects is invalidated, or on a reset. Each request
   * of a group read every project's grants, and a client naming groups whose projects were more
   * than the cache holds had the store read for all of them on every request.
   */
  anyOf (ids: readonly number[], kind: string, test: (grants: StoredGrants | null, projectId: number) => boolean): boolean | Promise<boolean>
  /** Drops one root namespace (read-your-writes after a local write). */
  invalidateNamespace (namespacePath: string): void
  /** Drops one project (after a local write, for read-your-writes without waiting for the message). */
  invalidate (projectId: number): void
  flush (): void
  stats (): GrantCacheStats
  /** Stops listening to the store; does not close the store. */
  close (): void
}

interface Entry<V> {
  readonly value: V
  readonly fetchedAt: number
  readonly ttl: number
}

type Counters = { -readonly [K in keyof GrantCacheStats]: number }

/** One keyed layer: freshness, single flight, stale-on-failure. Projects and paths each have one. */
function createLayer<K extends number | string, V> (options: {
  max: number
  ttl: number
  negativeTtl: number
  staleWindow: number
  loadTimeout: number
  now: () => number
  /** False while invalidations may be missed: no entry is then fresh. */
  listening: () => boolean
  counters: Counters
  isNegative: (value: V) => boolean
  /** `input`: what get() was given to read the key from (a path kept by its hash: the path). */
  load: (key: K, input: string | undefined) => Promise<V>
  describe: (key: K) => string
}) {
  const { counters, now } = options
  const entries = countedLru<K, Entry<V>>(options.max)
  // Answers "nothing stored" are kept apart: requests for made-up ids (any client can send them)
  // must not push configured projects out, whose copies are also what a store outage serves.
  const negatives = countedLru<K, Entry<V>>(options.max)
  const inflight = new Map<K, Promise<Entry<V>>>()

  function fetch (key: K, input: string | undefined): Promise<Entry<V>> {
    const startedAt = now()
    const flight: Promise<Entry<V>> = withTimeout(options.load(key, input), options.loadTimeout).then(value => {
      const negative = options.isNegative(value)
      const entry: Entry<V> = { value, fetchedAt: startedAt, ttl: negative ? options.negativeTtl : options.ttl }
      // Only the flight still registered may fill the cache: an invalidation during the read
      // removed it, and its answer may predate the write.
      if (inflight.get(key) === flight) {
        inflight.delete(key)
        const [keep, other] = negative ? [negatives, entries] : [entries, negatives]
        other.delete(key)
        keep.set(key, entry)
      }
      return entry
    }, (err: unknown) => {
      if (inflight.get(key) === flight) inflight.delete(key)
      throw err
    })
    inflight.set(key, flight)
    return flight
  }

  async function read (key: K, input?: string): Promise<Entry<V>> {
    counters.misses++
    let flight = inflight.get(key)
    if (flight !== undefined) counters.singleFlightWaits++
    else flight = fetch(key, input)
    try {
      return await flight
    } catch (err) {
      counters.storeErrors++
      // Read the entry again: an invalidation that arrived meanwhile removed it, and a
      // revoked entry must not come back as "stale but acceptable".
      const stale = entries.peek(key) ?? negatives.peek(key)
      if (stale !== undefined && now() - stale.fetchedAt <= stale.ttl + options.staleWindow) {
        counters.staleServed++
        return stale
      }
      if (stale !== undefined) drop(key)
      counters.failClosed++
      throw err instanceof GrantsStoreUnavailableError
        ? err
        : new GrantsStoreUnavailableError(`reading ${options.describe(key)}: ${(err as Error).message}`, { cause: err })
    }
  }

  /** Hot path: the answer with its age (`fetchedAt`, `ttl`: how long it may be kept), a promise only when read from the store. */
  function entry (key: K, input?: string): Entry<V> | Promise<Entry<V>> {
    const found = entries.get(key) ?? negatives.get(key)
    if (found === undefined || now() - found.fetchedAt >= found.ttl || !options.listening()) return read(key, input)
    counters.hits++
    if (options.isNegative(found.value)) counters.negativeHits++
    return found
  }

  function drop (key: K): void {
    entries.delete(key)
    negatives.delete(key)
  }

  return {
    /** Entries held, both kinds. */
    size: () => entries.size + negatives.size,
    /** Hot path: one LRU lookup and a clock read, and no promise, when the entry is fresh. */
    get (key: K, input?: string): V | Promise<V> {
      const found = entry(key, input)
      return found instanceof Promise ? found.then(answer => answer.value) : found.value
    },
    entry,
    drop (key: K): void {
      drop(key)
      inflight.delete(key)
    },
    clear (): void {
      entries.clear()
      negatives.clear()
      inflight.clear()
    }
  }
}

/**
 * Where a path's answer is kept: the lower-cased path, past 64 characters its SHA-256 (`#` never
 * occurs in a full path). Kept whole, made-up paths of up to 2,048 characters (any client's package
 * write names one) held 2 KiB each among the answers "nothing stored" until pushed out.
 */
function pathCacheKey (path: string): string {
  return path.length > 64 ? `#${createHash('sha256').update(path).digest('hex')}` : path
}

/** Invalidations anyOf remembers (a verdict older than this many is read again), and a flush's mark among them. */
const RECENT_INVALIDATIONS = 1024
const EVERY_PROJECT = -1
/** Invalidations since a verdict was last asked that are each looked for in its listing; more, and the listing is read into a set for that ask. */
const LOOKED_FOR = 16

function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new GrantsStoreUnavailableError(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export function createGrantCache (options: GrantCacheOptions): GrantCache {
  const { store } = options
  const ttl = options.ttlMs ?? 10_000
  const negativeTtl = options.negativeTtlMs ?? ttl
  const staleWindow = options.staleWindowMs ?? 30_000
  const loadTimeout = options.loadTimeoutMs ?? 2000
  const max = options.maxEntries ?? 10_000
  const now = options.now ?? (() => performance.now())
  const wallClock = options.wallClock ?? Date.now
  for (const [name, value] of Object.entries({ ttlMs: ttl, negativeTtlMs: negativeTtl, staleWindowMs: staleWindow, loadTimeoutMs: loadTimeout })) {
    if (!Number.isFinite(value) || value < 0) throw new TypeError(`grant cache: ${name} must be a non-negative number`)
  }
  if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('grant cache: maxEntries must be a positive integer')

  const counters: Counters = {
    hits: 0, negativeHits: 0, misses: 0, staleServed: 0, singleFlightWaits: 0, storeErrors: 0, failClosed: 0,
    invalidationsReceived: 0, resets: 0, subscriptionLosses: 0, lastInvalidationLagMs: -1, projectEntries: 0, pathEntries: 0, namespaceEntries: 0
  }
  // Whether invalidations are heard: false from a `lost` to the `reset` that says they are again.
  let listening = true
  const common = { max, ttl, negativeTtl, staleWindow, loadTimeout, now, listening: () => listening, counters }
  const projects = createLayer<number, StoredGrants | null>({
    ...common,
    isNegative: value => value === null,
    load: id => store.get(id),
    describe: id => `project ${id}`
  })
  const paths = createLayer<string, number | null>({
    ...common,
    isNegative: value => value === null,
    load: (key, path) => store.resolvePath(path ?? key),
    describe: key => `path ${key}`
  })
  const namespaces = createLayer<string, StoredNamespaceSettings | null>({
    ...common,
    isNegative: value => value === null,
    load: key => store.getNamespace(key),
    describe: key => `root namespace ${key}`
  })

  // anyOf's answers, kept beside the listing they were drawn from (by its identity: they go when
  // it goes) and by kind. `seen`: the invalidations counted when the answer was read, or when it
  // was last found to hold none of its projects since.
  interface Verdict { seen: number, expiresAt: number, value: boolean | Promise<boolean> }
  const verdicts = new WeakMap<readonly number[], Map<string, Verdict>>()
  // The projects invalidated last (EVERY_PROJECT for a flush), the one counted n at n % RECENT: a
  // verdict is kept while none of its projects is among those counted since its `seen`, and
  // dropped when more were counted since than are remembered.
  const recent = new Float64Array(RECENT_INVALIDATIONS)
  let invalidations = 0
  const invalidated = (projectId: number): void => {
    recent[invalidations % RECENT_INVALIDATIONS] = projectId
    invalidations++
  }
  // The projects are looked for in the listing itself: a set of them kept beside each listing
  // doubled what a listing holds (some 20 KB more for 1,000 projects, and the finder keeps up to
  // 10,000 listings, a group spelled as many ways). An ask after invalidations costs at most
  // LOOKED_FOR passes over the listing, or one set of it, no more than the cache reads of every
  // project each request once made.
  const holds = (verdict: Verdict, ids: readonly number[]): boolean => {
    const since = invalidations - verdict.seen
    if (since > RECENT_INVALIDATIONS) return false
    if (since > 0) {
      const among = since > LOOKED_FOR ? new Set(ids) : null
      for (let n = verdict.seen; n < invalidations; n++) {
        const id = recent[n % RECENT_INVALIDATIONS]!
        if (id === EVERY_PROJECT || (among === null ? ids.includes(id) : among.has(id))) return false
      }
      verdict.seen = invalidations
    }
    return listening && now() < verdict.expiresAt
  }

  function anyOf (ids: readonly number[], kind: string, test: (grants: StoredGrants | null, projectId: number) => boolean): boolean | Promise<boolean> {
    // A listing that may change under its identity is asked anew each time.
    if (!Object.isFrozen(ids)) return drawn(ids, test).then(answer => answer.value)
    let kinds = verdicts.get(ids)
    if (kinds === undefined) {
      kinds = new Map()
      verdicts.set(ids, kinds)
    }
    const known = kinds.get(kind)
    if (known !== undefined && holds(known, ids)) return known.value
    // Counted before the first read: an invalidation during the reads drops the answer.
    const verdict: Verdict = { seen: invalidations, expiresAt: Infinity, value: false }
    verdict.value = drawn(ids, test).then(answer => {
      verdict.value = answer.value
      verdict.expiresAt = answer.expiresAt
      return answer.value
    }, (err: unknown) => {
      if (kinds.get(kind) === verdict) kinds.delete(kind)
      throw err
    })
    kinds.set(kind, verdict)
    return verdict.value
  }

  /** The answer and when it stops being fresh: when its oldest project answer would (never past it). */
  async function drawn (ids: readonly number[], test: (grants: StoredGrants | null, projectId: number) => boolean): Promise<{ value: boolean, expiresAt: number }> {
    const read = await Promise.all(ids.map(id => projects.entry(id)))
    let value = false
    let expiresAt = Infinity
    for (const [i, entry] of read.entries()) {
      expiresAt = Math.min(expiresAt, entry.fetchedAt + entry.ttl)
      if (!value && test(entry.value, ids[i]!)) value = true
    }
    return { value, expiresAt }
  }

  function flush (): void {
    projects.clear()
    paths.clear()
    namespaces.clear()
    invalidated(EVERY_PROJECT)
  }

  function onEvent (event: InvalidationEvent): void {
    if (event.kind === 'reset') {
      counters.resets++
      listening = true
      flush()
      return
    }
    if (event.kind === 'lost') {
      if (listening) counters.subscriptionLosses++
      listening = false
      return
    }
    counters.invalidationsReceived++
    // Always drop, whatever the versions say: after a Redis data loss they start again at 1.
    if (event.kind === 'namespace') {
      namespaces.drop(event.namespace)
    } else {
      projects.drop(event.projectId)
      invalidated(event.projectId)
      for (const path of event.paths) paths.drop(pathCacheKey(path))
    }
    const lag = Math.max(0, wallClock() - event.publishedAt)
    counters.lastInvalidationLagMs = lag
    options.onInvalidation?.(lag)
  }
  const unsubscribe = store.subscribe(onEvent)

  return {
    get: projectId => projects.get(projectId),
    async resolvePath (path) {
      // Every spelling GitLab's LOWER() may take for a stored path (foldedPathKey).
      const key = foldedPathKey(path)
      if (key === null) return null
      return await paths.get(pathCacheKey(key), key)
    },
    async namespace (namespacePath) {
      const key = pathKey(namespacePath)
      if (!isRootNamespaceKey(key)) return null
      return await namespaces.get(key)
    },
    anyOf,
    invalidate: projectId => {
      projects.drop(projectId)
      invalidated(projectId)
    },
    invalidateNamespace: namespacePath => namespaces.drop(pathKey(namespacePath)),
    flush,
    stats: () => ({ ...counters, projectEntries: projects.size(), pathEntries: paths.size(), namespaceEntries: namespaces.size() }),
    close () {
      unsubscribe()
      flush()
    }
  }
}
