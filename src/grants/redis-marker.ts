// The Redis store's marker: keys that hold one random id for as long as Redis holds what the
// gate wrote. Redis can lose everything without a message: a restart without persistence,
// FLUSHALL, FLUSHDB. Every project then reads as unknown, which drops its allowlist and its
// package rules (a Developer's job passes Maintainer-only rules) and, with
// GATE_UNKNOWN_PROJECT=allow, lets every job token in. So every read that decides comes with the
// marker of its own slot, in one script, and a marker gone or changed fails closed
// (GRANTS_STORE_LOST) until the data is restored or the loss accepted.
//
// Standalone and Sentinel: one key, `<prefix>:store`. Cluster: one per hash slot (16,384 small
// keys), so that a read and its marker are in one slot and a node that lost its data is seen
// while the others kept theirs.
//
// A replica that finds its slot's marker absent leaves `lost:<id>` there, and on the first marker
// (markLost): a start that finds such a trace refuses as the replica did, where it would have
// taken a store without markers for a new one and marked it anew.

import calculateSlot from 'cluster-key-slot'
import { Cluster, type Redis } from 'ioredis'
import { refuseOver } from './redis-bounds.ts'
import { script } from './redis-acl.ts'

const CLUSTER_SLOTS = 16384

export interface MarkerKeys {
  /** The marker a read of `key` checks: the same slot. */
  of (key: string): string
  /** Every marker; the first is the one a new id is settled on. */
  readonly all: readonly string[]
}

let slotTags: string[] | undefined

/** A short hash tag per slot (`m<n>` for the first n whose slot it is), computed once. */
function tags (): string[] {
  if (slotTags !== undefined) return slotTags
  const found = new Array<string>(CLUSTER_SLOTS)
  for (let n = 0, left = CLUSTER_SLOTS; left > 0; n++) {
    const tag = 'm' + n.toString(36)
    const slot = calculateSlot(tag)
    if (found[slot] === undefined) {
      found[slot] = tag
      left--
    }
  }
  slotTags = found
  return found
}

export function markerKeys (prefix: string, cluster: boolean): MarkerKeys {
  if (!cluster) {
    const key = `${prefix}:store`
    return { of: () => key, all: [key] }
  }
  const bySlot = tags().map(tag => `${prefix}:{${tag}}:store`)
  return { of: key => bySlot[calculateSlot(key)]!, all: bySlot }
}

/**
 * A marker's value once a replica found it absent (`lost:<id>`, written in the script that found
 * it): the store `id` lost this slot's data. Without it a start on a store that lost everything
 * (a rollout, a scale-up, a crash) found no marker, took the store for a new one and marked it,
 * and decided on what was left while the replicas that saw the loss refused.
 */
export const LOST = 'lost:'

// The longest marker: an id is at most 128 characters, and `lost:` or `new:` before it.
const MARKER_BYTES = 256

/**
 * Lua, the first lines of every script that reads or writes beside a marker: `marker` is
 * KEYS[key]'s value; when absent it is replaced by the trace of the loss, `lost:` and ARGV[arg]
 * (the replica's id; none for ''). A value longer than any marker (an id is at most 128
 * characters) is read as its size, which no id is: the scripts return the marker, and one near
 * Redis's 512 MB, sent whole with every read, held the connection past the command timeout and
 * every read behind it.
 */
export function markLost (key: number, arg: number): string {
  return `local marker = redis.call('STRLEN', KEYS[${key}])
if marker > ${MARKER_BYTES} then marker = 'a value of ' .. marker .. ' bytes' else marker = redis.call('GET', KEYS[${key}]) end
if not marker and ARGV[${arg}] ~= '' then redis.call('SET', KEYS[${key}], '${LOST}' .. ARGV[${arg}]) end
`
}

export interface MarkerState {
  /** The store's id (or the one the traces of a loss name); undefined only when none was found and none was to be created. */
  readonly id: string | undefined
  /** No marker was found and this start wrote them: a new store, or one that lost everything. */
  readonly created: boolean
  /** How many markers the start read (1; in a Cluster one per master and the first). */
  readonly probed: number
  /** Of those, absent or a trace of the loss (`lost:<id>`): those slots lost their data. */
  readonly missing: number
  /** Of those, holding another id. */
  readonly other: number
}

type Client = Redis | Cluster

// Commands per pipeline: a pipeline's commands all start their timeout when sent, and 16,384 of
// them answered on a busy machine outran the command timeout.
const BATCH = 1000

/**
 * Runs `attempt` again while it times out, until `deadline` (performance.now()): marking a store
 * is one-off work that waits for Redis as long as the start waits to connect, where a busy
 * machine took past the command timeout. Every command here can be run twice (GET, SET NX, the
 * scripts below).
 */
async function patiently<T> (deadline: number, attempt: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await attempt()
    } catch (err) {
      if (!/timed out/i.test((err as Error).message) || performance.now() >= deadline) throw err
    }
  }
}

/**
 * One command per key, answers in order. Cluster: pipelines of one node's keys (ioredis takes a
 * pipeline whose keys one node serves), the nodes at once, BATCH commands at a time.
 */
async function each (client: Client, keys: readonly string[], command: (key: string) => string[], deadline: number): Promise<unknown[]> {
  const groups = new Map<string, number[]>()
  keys.forEach((key, i) => {
    const owner = client instanceof Cluster ? String(client.slots[calculateSlot(key)]) : ''
    const group = groups.get(owner)
    if (group === undefined) groups.set(owner, [i])
    else group.push(i)
  })
  const results = new Array<unknown>(keys.length)
  await Promise.all([...groups.values()].map(async indexes => {
    for (let from = 0; from < indexes.length; from += BATCH) {
      const batch = indexes.slice(from, from + BATCH)
      await patiently(deadline, async () => {
        const replies = await client.pipeline(batch.map(i => command(keys[i]!))).exec() ?? []
        if (replies.length !== batch.length) throw new Error('a store marker pipeline was not run')
        replies.forEach(([err, value], j) => {
          if (err !== null) throw err
          results[batch[j]!] = value
        })
      })
    }
  }))
  return results
}

/** The markers a start reads: the first, and in a Cluster the first of each master's slots. */
function probes (client: Client, keys: MarkerKeys): string[] {
  if (!(client instanceof Cluster)) return [keys.all[0]!]
  const firsts = new Map<string, number>()
  client.slots.forEach((owners, slot) => { if (!firsts.has(String(owners))) firsts.set(String(owners), slot) })
  return [...new Set([keys.all[0]!, ...[...firsts.values()].map(slot => keys.all[slot]!)])]
}

/** The id most markers hold (`held` counts one id at least). */
function mostHeld (held: ReadonlyMap<string, number>): string {
  return [...held].reduce((a, b) => (b[1] > a[1] ? b : a))[0]
}

function tally (values: readonly unknown[], id: string): { missing: number, other: number } {
  let missing = 0
  let other = 0
  for (const value of values) {
    if (value === null || value === LOST + id) missing++
    else if (value !== id) other++
  }
  return { missing, other }
}

/**
 * The first marker's value while a start writes the others (`new:<id>`): a start that finds it
 * finishes the marking with that id. Marked first with the id itself, a start cut off while
 * writing the rest (killed, a pipeline timed out, a node refusing writes) left the store looking
 * like one whose masters lost their data: the slots never marked were refused for good.
 */
const CREATING = 'new:'

// KEYS[1] the first marker. ARGV[1] the value it held while marking, ARGV[2] the id: set only if
// it still holds the first (another start of this moment may have finished it already).
const FINISH_SCRIPT = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0
`)

// KEYS[1] a marker: GET, measured first. Read whole, one near Redis's 512 MB held the start's
// connection past the command timeout, and the start retried it until it gave up; it fails the
// start instead, naming the key and its size.
const READ_SCRIPT = script(`
${refuseOver("redis.call('STRLEN', KEYS[1])", "KEYS[1] .. ' holds'", MARKER_BYTES)}return redis.call('GET', KEYS[1])
`)
const readMarker = (key: string): string[] => ['eval', READ_SCRIPT, '1', key]

/**
 * Writes every marker with the id settled on the first one (`new:<id>` there until the others are
 * written), or finishes a marking another start began: every start that returns has seen all of
 * them written, so an absent marker a running replica reads is data lost.
 */
async function mark (client: Client, keys: MarkerKeys, newId: () => string, probed: number, deadline: number): Promise<MarkerState> {
  const first = keys.all[0]!
  const candidate = CREATING + newId()
  await patiently(deadline, async () => await client.set(first, candidate, 'NX'))
  const settled = await patiently(deadline, async () => await client.eval(READ_SCRIPT, 1, first) as string | null)
  if (settled === null) throw new Error(`the store marker ${first} was not kept`)
  // A replica found the marker absent meanwhile: a loss, not a new store.
  if (settled.startsWith(LOST)) return { id: settled.slice(LOST.length), created: false, probed, missing: 1, other: 0 }
  if (!settled.startsWith(CREATING)) return { id: settled, created: true, probed, missing: 0, other: 0 }
  const id = settled.slice(CREATING.length)
  const set = await each(client, keys.all.slice(1), key => ['set', key, id, 'NX'], deadline)
  await patiently(deadline, async () => await client.eval(FINISH_SCRIPT, 1, first, settled, id))
  // Written by another start of this moment, or there before: read what the probes missed.
  if (set.every(ok => ok === 'OK')) return { id, created: true, probed, missing: 0, other: 0 }
  return { id, created: true, probed: keys.all.length, ...tally(await each(client, keys.all, readMarker, deadline), id) }
}

/**
 * Reads the markers at start: the first, and in a Cluster one per master (every read checks its
 * own slot's; reading all 16,384 at every start was the slowest part of it). None found, nor a
 * trace of a loss: a new store (or one that lost everything while no replica read it, which a
 * start cannot tell apart) and, with `create`, the markers are written with a new id (mark); a
 * marking left unfinished is finished. Otherwise the id most of them hold is the store's (else
 * the one the traces name), and absent ones stay absent (their slots lost their data: reads there
 * fail closed). With `expected` (the id the operator knows the store by) nothing is marked anew:
 * the store is that id's, and markers absent or holding another are lost slots.
 */
export async function settleMarker (client: Client, keys: MarkerKeys, options: { readonly create: boolean, readonly newId: () => string, readonly patienceMs: number, readonly expected?: string | undefined }): Promise<MarkerState> {
  const deadline = performance.now() + options.patienceMs
  const probed = probes(client, keys)
  const values = await each(client, probed, readMarker, deadline) as Array<string | null>
  // probed[0] is the first marker.
  const pending = values[0]?.startsWith(CREATING) === true ? values[0].slice(CREATING.length) : undefined
  const counts = new Map<string, number>()
  const traces = new Map<string, number>()
  for (const value of values) {
    if (value === null) continue
    const [of, id] = value.startsWith(LOST) ? [traces, value.slice(LOST.length)] : [counts, value]
    of.set(id, (of.get(id) ?? 0) + 1)
  }
  // The operator named the store (GATE_REDIS_STORE_ID): markers absent, or another id's, are a
  // loss, however many; only a marking of that id left unfinished is finished.
  const expected = options.expected
  if (expected !== undefined) {
    if (pending === expected && options.create) return await mark(client, keys, () => expected, probed.length, deadline)
    return { id: expected, created: false, probed: probed.length, ...tally(values, expected) }
  }
  if (counts.size === 0 && traces.size > 0) {
    const id = mostHeld(traces)
    return { id, created: false, probed: probed.length, ...tally(values, id) }
  }
  if (counts.size === 0 || pending !== undefined) {
    if (options.create) return await mark(client, keys, options.newId, probed.length, deadline)
    return { id: pending, created: false, probed: probed.length, ...(pending === undefined ? { missing: probed.length, other: 0 } : tally(values.slice(1), pending)) }
  }
  const id = mostHeld(counts)
  return { id, created: false, probed: probed.length, ...tally(values, id) }
}

// KEYS[1] a marker, ARGV[1] the id: written where the marker is absent, a trace of the loss of
// that id, or the first marker of a marking no start finished (none has run since).
const FILL_SCRIPT = script(`
local marker = redis.call('GET', KEYS[1])
if marker and marker ~= '${LOST}' .. ARGV[1] and marker ~= '${CREATING}' .. ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`)

/**
 * Accepts a loss: writes `id` into every absent marker and every trace of its loss, so that the
 * replicas refusing with it decide again, on what the store holds now. Markers holding another
 * id (or the trace of another's loss) are left as they are.
 */
export async function fillMarkers (client: Client, keys: MarkerKeys, id: string, patienceMs: number): Promise<{ readonly written: number, readonly other: number }> {
  const deadline = performance.now() + patienceMs
  // Loaded on every master first, so that 16,384 calls send their hash rather than their text.
  const masters: Redis[] = client instanceof Cluster ? client.nodes('master') : [client]
  const load = async (script: string): Promise<string> => (await Promise.all(masters.map(async node => String(await patiently(deadline, async () => await node.script('LOAD', script))))))[0]!
  const [fill, read] = [await load(FILL_SCRIPT), await load(READ_SCRIPT)]
  // Counted from what the markers held before and hold after, not from the script's answers: a
  // batch retried after a timeout finds its first run's markers written, and answers 0 for them.
  const get = (key: string): string[] => ['evalsha', read, '1', key]
  const before = await each(client, keys.all, get, deadline)
  await each(client, keys.all, key => ['evalsha', fill, '1', key, id], deadline)
  const now = await each(client, keys.all, get, deadline)
  const fillable = (value: unknown): boolean => value === null || value === LOST + id || value === CREATING + id
  const written = now.filter((value, i) => value === id && fillable(before[i])).length
  return { written, other: tally(now, id).other }
}
