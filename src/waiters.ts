// Who still waits for a lookup. A lookup waiting for a slot (src/projects/slots.ts) is shared by
// every request that asked its key at once (one load per key), and any of their clients may go
// away while it waits: a lookup queued for requests whose clients had all gone was still asked of
// GitLab once its turn came, and the live builds' lookups queued behind it waited for it. A lookup
// is wanted while anyone waits for it; a load's waiters are the requests sharing it, or the loads
// it serves in turn (a Maven listing serves the lookup of each path of its name; a job project's
// groups, the resolution of its job's token). A job token's resolution (src/identity/cache.ts) is
// given up once its waiters have all gone, its GitLab calls aborted.

import type { ServerResponse } from 'node:http'

/** A request, or a load, waiting for a load. */
export interface Waiter {
  /** Nobody waits any more: the request's client went away, or every waiter of the load did. */
  readonly gone: boolean
  /** Calls `changed` whenever `gone` changes; returns what stops that. */
  watch: (changed: () => void) => () => void
}

/**
 * The waiters of one shared load: gone while every one of them is, back when a new one comes
 * (a load still running is shared by the requests that come after). `undefined` is a waiter who
 * never goes: a caller that names none, whose load always runs, as before.
 */
export class Waiters implements Waiter {
  private live = 0
  private readonly listeners = new Set<() => void>()
  private readonly stops: Array<() => void> = []

  constructor (first: Waiter | undefined) {
    this.add(first)
  }

  get gone (): boolean {
    return this.live === 0
  }

  add (waiter: Waiter | undefined): void {
    if (waiter === undefined) {
      this.count(1)
      return
    }
    let waiting = !waiter.gone
    if (waiting) this.count(1)
    this.stops.push(waiter.watch(() => {
      if (waiting === !waiter.gone) return
      waiting = !waiting
      this.count(waiting ? 1 : -1)
    }))
  }

  watch (changed: () => void): () => void {
    // Each watcher its own entry: one function may watch twice and stop once.
    const entry = (): void => { changed() }
    this.listeners.add(entry)
    return () => { this.listeners.delete(entry) }
  }

  /** The load has settled: nothing is watched any more. */
  close (): void {
    for (const stop of this.stops.splice(0)) stop()
    this.listeners.clear()
  }

  private count (by: 1 | -1): void {
    const was = this.gone
    this.live += by
    if (this.gone !== was) for (const changed of [...this.listeners]) changed()
  }
}

/**
 * Why a lookup was not made, or was given up: it waited for a slot (or was about to), or for
 * GitLab (src/identity/cache.ts), and everyone waiting for it had gone. Only requests whose
 * clients have gone ever see it.
 */
export class LookupDropped extends Error {
  constructor () {
    super('the lookup was dropped: every request waiting for it had gone')
    this.name = 'LookupDropped'
  }
}

/** A load shared by its waiters (shareLoad). */
export interface SharedLoad<V> {
  readonly pending: Promise<V>
  /** Who waits for it: add() a caller that shares it. */
  readonly waiters: Waiters
}

/**
 * Starts `load`, wanted by `waiter` and whoever is added to its waiters after. Once every waiter
 * has gone, `load`'s signal is aborted (its GitLab calls given up), `abandoned` is called (its
 * owner forgets it: the next caller loads anew) and it rejects with LookupDropped, whatever it
 * was doing then. `load` is handed the waiters too, for the loads it waits for in turn. A
 * `waiter` gone already has the load begin given up: its signal aborted, no GitLab call made.
 */
export function shareLoad<V> (waiter: Waiter | undefined, load: (signal: AbortSignal, waiters: Waiter) => Promise<V>, abandoned: () => void): SharedLoad<V> {
  const waiters = new Waiters(waiter)
  const given = new AbortController()
  // Gone before it began (a client that left while its request waited for something shared with
  // another client): no change of `gone` would ever come to give the load up, and it ran to its
  // end. It begins given up: a slot drops it (counted), a GitLab call is never sent.
  if (waiters.gone) given.abort(new LookupDropped())
  waiters.watch(() => {
    if (!waiters.gone || given.signal.aborted) return
    given.abort(new LookupDropped())
    abandoned()
  })
  let loaded: Promise<V>
  try {
    loaded = load(given.signal, waiters)
  } catch (error) {
    loaded = Promise.reject(error)
  }
  const pending = loaded.then(value => {
    waiters.close()
    if (given.signal.aborted) throw given.signal.reason
    return value
  }, (error: unknown) => {
    waiters.close()
    throw given.signal.aborted ? given.signal.reason : error
  })
  return { pending, waiters }
}

/**
 * Loads by key, one in flight per key (single flight), each given up once everyone waiting for it
 * has gone (shareLoad): the loaders of job tokens and of project facts keep their outcomes apart
 * and only differ in what they keep.
 */
export class SharedLoads<V> {
  private readonly loading = new Map<string, SharedLoad<V>>()

  get size (): number {
    return this.loading.size
  }

  keys (): IterableIterator<string> {
    return this.loading.keys()
  }

  /** Forgets every load: those still running answer their callers; their outcomes are not kept. */
  clear (): void {
    this.loading.clear()
  }

  /** The load in flight for key, now wanted by `waiter` too; undefined when there is none. */
  join (key: string, waiter: Waiter | undefined): Promise<V> | undefined {
    const inFlight = this.loading.get(key)
    inFlight?.waiters.add(waiter)
    return inFlight?.pending
  }

  /**
   * Starts key's load for `waiter` (refused with LookupDropped when it has gone already).
   * `settled` is told its outcome only while it is still key's load: not given up, not cleared.
   */
  start (key: string, waiter: Waiter | undefined, load: (signal: AbortSignal, waiters: Waiter) => Promise<V>, settled: { readonly value: (value: V) => void, readonly error?: (error: unknown) => void }): Promise<V> {
    // Nobody to answer: no load for it.
    if (waiter?.gone === true) return Promise.reject(new LookupDropped())
    const mine = (): boolean => {
      const is = this.loading.get(key) === entry
      if (is) this.loading.delete(key)
      return is
    }
    const shared = shareLoad(waiter, load, () => { mine() })
    const pending = shared.pending.then(value => {
      if (mine()) settled.value(value)
      return value
    }, (error: unknown) => {
      // A load given up has left already: its failure is never kept.
      if (mine()) settled.error?.(error)
      throw error
    })
    const entry: SharedLoad<V> = { pending, waiters: shared.waiters }
    this.loading.set(key, entry)
    return pending
  }
}

/**
 * The client of a request being decided, as the lookups it waits for see it:
 * gone once its connection has closed, which is what the answer's 'close' means before any answer.
 * Hot path: one small object per request, listening only once a lookup waits.
 */
export class ClientWaiter implements Waiter {
  constructor (private readonly answer: ServerResponse) {}

  get gone (): boolean {
    return this.answer.destroyed
  }

  watch (changed: () => void): () => void {
    const listener = (): void => { changed() }
    this.answer.once('close', listener)
    return () => { this.answer.off('close', listener) }
  }
}
