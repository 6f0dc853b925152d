// The slots the project finder's costly GitLab reads run in (src/projects/finder.ts: npm metadata,
// Maven package listings, groups' project listings): a few at once gate-wide, the rest waiting, shared fairly between jobs.
// Any job can have made-up package names looked up (each a cache miss), and handed out first come,
// first served, a job naming a hundred at once had every slot, and every other build's uncached
// lookup waited behind all of them. A freed slot now goes to the job with the fewest loads running,
// and among those to the one served least recently: a build waits for the next free slot, not for
// another job's queue. A waiting load whose every waiter has gone (their clients went away) is
// dropped from the queues, never started: it cost GitLab a call for nobody, and every live build's
// lookup behind it waited for it. A load started is given up by its owner once its waiters have
// gone (src/projects/finder.ts: its GitLab calls aborted), which frees its slot.

import { GateError } from '../errors.ts'
import { LookupDropped, type Waiter } from '../waiters.ts'

export interface LookupSlots {
  /**
   * Runs `work` in a slot now, or when `owner`'s turn comes; refuses at once, 503
   * PROJECT_LOOKUPS_BUSY, past the loads waiting gate-wide or `owner`'s own. `key`: what the load
   * reads, which callers of the same key share (the finder keeps one load per key), for join().
   * `waiter`: who waits for the load (none: it always runs); while it waits for a slot, the load is
   * dropped once its waiter is gone, rejecting with LookupDropped, and one already gone is never
   * started.
   */
  run: <T>(work: () => Promise<T>, owner: string, key?: string, waiter?: Waiter) => Promise<T>
  /**
   * `owner` waits for the load of `key` another owner's call queued (a load shared): that load is
   * also `owner`'s, started in whichever of their turns comes first. Nothing when no load of that
   * key waits, or `owner` already has as many waiting as it may (it then waits as the load does).
   */
  join: (key: string, owner: string) => void
  stats: () => SlotStats
}

export interface SlotStats {
  readonly running: number
  readonly waiting: number
  /** Owners with loads running or waiting. */
  readonly owners: number
  /** Loads dropped unstarted, their waiters gone, since the slots were made. */
  readonly dropped: number
}

/** A load waiting for a slot, in the queue of each owner that waits for it. */
interface Waiting {
  readonly start: (owner: string) => void
  readonly drop: () => void
  readonly key: string | undefined
  readonly owners: Set<string>
}

/** An owner with loads running or waiting. */
interface Owner {
  running: number
  /** Its loads waiting, in the order asked. */
  readonly queue: Waiting[]
  /** When it last had a load started (a count of starts); -1: not since it came. */
  servedAt: number
}

/**
 * `max` loads at once; at most `waiting` loads wait, at most `perOwner` of them an owner's (a job;
 * '' for requests of no job, which share one turn and one allowance: credentials are anyone's to
 * make up). A job's loads start in the order it asked them.
 */
export function createLookupSlots (max: number, waiting: number, perOwner: number): LookupSlots {
  let running = 0
  let waitingLoads = 0
  let starts = 0
  let dropped = 0
  // Owners with loads running or waiting, in the order they came.
  const owners = new Map<string, Owner>()
  const waitingByKey = new Map<string, Waiting>()

  const ownerOf = (name: string): Owner => {
    let owner = owners.get(name)
    if (owner === undefined) owners.set(name, owner = { running: 0, queue: [], servedAt: -1 })
    return owner
  }
  const leaveIfIdle = (name: string, owner: Owner): void => {
    if (owner.running === 0 && owner.queue.length === 0) owners.delete(name)
  }
  const enqueue = (load: Waiting, name: string): void => {
    load.owners.add(name)
    ownerOf(name).queue.push(load)
  }

  /**
   * The owner whose turn it is: of those with loads waiting, the one with the fewest running, then
   * the one served least recently (first: not served since it came, then the first to come). Looks
   * at every owner present once per load started: jobs whose lookups wait or run (owners are
   * resolved jobs, or the one of no job), a loop beside a GitLab call.
   */
  const nextOwner = (): string | undefined => {
    let best: string | undefined
    let bestOwner: Owner | undefined
    for (const [name, owner] of owners) {
      if (owner.queue.length === 0) continue
      if (bestOwner === undefined || owner.running < bestOwner.running || (owner.running === bestOwner.running && owner.servedAt < bestOwner.servedAt)) {
        best = name
        bestOwner = owner
      }
    }
    return best
  }

  /** Takes the load out of every queue it waits in; `keep`: an owner about to run it, which stays. */
  const dequeue = (load: Waiting, keep?: string): void => {
    for (const other of load.owners) {
      const owner = owners.get(other)!
      owner.queue.splice(owner.queue.indexOf(load), 1)
      if (other !== keep) leaveIfIdle(other, owner)
    }
    waitingLoads--
    if (load.key !== undefined && waitingByKey.get(load.key) === load) waitingByKey.delete(load.key)
  }

  const startNext = (): void => {
    const name = nextOwner()
    if (name === undefined) return
    const load = owners.get(name)!.queue[0]!
    // Its place in every queue it waits in is taken.
    dequeue(load, name)
    load.start(name)
  }

  const runNow = async <T>(work: () => Promise<T>, name: string): Promise<T> => {
    const owner = ownerOf(name)
    running++
    owner.running++
    owner.servedAt = starts++
    try {
      return await work()
    } finally {
      running--
      owner.running--
      leaveIfIdle(name, owner)
      // While a slot is free nothing waits: a slot frees, the next load takes it.
      startNext()
    }
  }

  return {
    run: async (work, owner, key, waiter) => {
      if (waiter?.gone === true) {
        dropped++
        throw new LookupDropped()
      }
      if (running < max) return await runNow(work, owner)
      if (waitingLoads >= waiting || (owners.get(owner)?.queue.length ?? 0) >= perOwner) throw new GateError('PROJECT_LOOKUPS_BUSY')
      return await new Promise((resolve, reject) => {
        // Watched while it waits only: a load started is GitLab's to answer.
        let stopWatching = (): void => {}
        const load: Waiting = {
          start: turn => {
            stopWatching()
            runNow(work, turn).then(resolve, reject)
          },
          drop: () => {
            stopWatching()
            dequeue(load)
            dropped++
            reject(new LookupDropped())
          },
          key,
          owners: new Set()
        }
        waitingLoads++
        if (key !== undefined && !waitingByKey.has(key)) waitingByKey.set(key, load)
        enqueue(load, owner)
        if (waiter !== undefined) stopWatching = waiter.watch(() => { if (waiter.gone) load.drop() })
      })
    },
    join (key, owner) {
      const load = waitingByKey.get(key)
      if (load === undefined || load.owners.has(owner) || (owners.get(owner)?.queue.length ?? 0) >= perOwner) return
      enqueue(load, owner)
    },
    stats: () => ({ running, waiting: waitingLoads, owners: owners.size, dropped })
  }
}
