// The slots of the project finder's GitLab reads (src/projects/slots.ts): who is served when a slot
// frees. Loads are promises the test settles by hand; what is checked is the order they start in.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GateError } from '../../src/errors.ts'
import { createLookupSlots, type LookupSlots } from '../../src/projects/slots.ts'
import { LookupDropped, Waiters, type Waiter } from '../../src/waiters.ts'
import { leavingClient } from './world.ts'

/** Loads that record their start and wait until finished by name. */
function loads (slots: LookupSlots): { ask: (owner: string, name: string, key?: string, waiter?: Waiter) => Promise<string>, started: string[], finish: (name: string) => Promise<void> } {
  const started: string[] = []
  const finishers = new Map<string, () => void>()
  return {
    started,
    ask: (owner, name, key, waiter) => slots.run(async () => {
      started.push(name)
      await new Promise<void>(resolve => finishers.set(name, resolve))
      return name
    }, owner, key, waiter),
    async finish (name) {
      const done = finishers.get(name)
      assert.ok(done !== undefined, `${name} is running`)
      done()
      // The next load starts once the finished one's promise has settled.
      for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve))
    }
  }
}

test('a freed slot goes to the job with the fewest loads running; a job\'s own loads keep their order', async () => {
  const l = loads(createLookupSlots(2, 100, 50))
  const all = [l.ask('a', 'a1'), l.ask('a', 'a2'), l.ask('a', 'a3'), l.ask('a', 'a4'), l.ask('b', 'b1'), l.ask('b', 'b2'), l.ask('c', 'c1')]
  assert.deepEqual(l.started, ['a1', 'a2'])
  // a runs one, b and c none: b (queued before c), then c, then a and b in turn.
  await l.finish('a1')
  assert.deepEqual(l.started.slice(2), ['b1'])
  await l.finish('a2')
  assert.deepEqual(l.started.slice(3), ['c1'])
  await l.finish('b1')
  assert.deepEqual(l.started.slice(4), ['a3'], 'a and b run none: a was served longer ago')
  await l.finish('c1')
  assert.deepEqual(l.started.slice(5), ['b2'])
  await l.finish('a3')
  await l.finish('b2')
  await l.finish('a4')
  assert.deepEqual(await Promise.all(all), ['a1', 'a2', 'a3', 'a4', 'b1', 'b2', 'c1'])
  assert.deepEqual(l.started, ['a1', 'a2', 'b1', 'c1', 'a3', 'b2', 'a4'])
})

test('the bounds stay: loads waiting gate-wide, and per job', async () => {
  const l = loads(createLookupSlots(1, 3, 2))
  const busy = (p: Promise<unknown>): Promise<void> => assert.rejects(p, (err: unknown) => err instanceof GateError && err.code === 'PROJECT_LOOKUPS_BUSY')
  const running = l.ask('a', 'a0')
  const waiting = [l.ask('a', 'a1'), l.ask('a', 'a2')]
  await busy(l.ask('a', 'a3'))
  waiting.push(l.ask('b', 'b1'))
  await busy(l.ask('c', 'c1'))
  await l.finish('a0')
  assert.deepEqual(l.started, ['a0', 'b1'])
  // b1 took its place: c may wait again, and, never served, goes before a.
  waiting.push(l.ask('c', 'c1'))
  for (const name of ['b1', 'c1', 'a1', 'a2']) await l.finish(name)
  assert.deepEqual(l.started, ['a0', 'b1', 'c1', 'a1', 'a2'])
  assert.equal(await running, 'a0')
  assert.equal((await Promise.all(waiting)).length, 4)
})

test('a job that waits for a load another job queued joins it: the load starts in the first of their turns', async () => {
  const slots = createLookupSlots(1, 100, 3)
  const l = loads(slots)
  const flood = [l.ask('a', 'a0'), l.ask('a', 'a1'), l.ask('a', 'a2'), l.ask('a', 'shared', 'k')]
  slots.join('k', 'b')
  slots.join('k', 'b')
  await l.finish('a0')
  assert.deepEqual(l.started, ['a0', 'shared'], 'b\'s turn (never served), and a\'s load, last in a\'s queue, it was')
  await l.finish('shared')
  assert.deepEqual(l.started.slice(2), ['a1'], 'started once: b waits for nothing more')
  await l.finish('a1')
  await l.finish('a2')
  assert.deepEqual(l.started, ['a0', 'shared', 'a1', 'a2'])
  assert.deepEqual(await Promise.all(flood), ['a0', 'a1', 'a2', 'shared'])
  // Joins of no load waiting, and of the one running, change nothing.
  slots.join('k', 'b')
  const again = l.ask('b', 'b1', 'k')
  slots.join('k', 'c')
  await l.finish('b1')
  assert.equal(await again, 'b1')
})

test('a join counts against the job\'s allowance while it waits, and frees it when the load starts', async () => {
  const slots = createLookupSlots(1, 100, 1)
  const l = loads(slots)
  const asked = [l.ask('a', 'a0'), l.ask('a', 'a1', 'k')]
  slots.join('k', 'b')
  await assert.rejects(l.ask('b', 'b1'), (err: unknown) => err instanceof GateError && err.code === 'PROJECT_LOOKUPS_BUSY')
  await l.finish('a0')
  assert.deepEqual(l.started, ['a0', 'a1'])
  asked.push(l.ask('b', 'b1'))
  await l.finish('a1')
  await l.finish('b1')
  assert.deepEqual(await Promise.all(asked), ['a0', 'a1', 'b1'])
})

const dropped = (p: Promise<unknown>): Promise<void> => assert.rejects(p, (err: unknown) => err instanceof LookupDropped)

test('a waiting load whose waiter has gone leaves the queue unstarted; the others keep their turns', async () => {
  const slots = createLookupSlots(1, 100, 50)
  const l = loads(slots)
  const clients = Array.from({ length: 3 }, () => leavingClient())
  const running = l.ask('a', 'a0', undefined, clients[0]!.waiter)
  const gone = [l.ask('a', 'a1', 'k1', clients[1]!.waiter), l.ask('b', 'b1', 'k2', clients[2]!.waiter)]
  slots.join('k2', 'c')
  const live = [l.ask('a', 'a2'), l.ask('b', 'b2')]
  assert.deepEqual(slots.stats(), { running: 1, waiting: 4, owners: 3, dropped: 0 })
  // A load started is GitLab's to answer: its client going changes nothing.
  clients[0]!.leave()
  clients[1]!.leave()
  clients[2]!.leave()
  for (const p of gone) await dropped(p)
  assert.deepEqual(slots.stats(), { running: 1, waiting: 2, owners: 2, dropped: 2 }, 'c, which only joined b1, waits for nothing')
  await l.finish('a0')
  assert.deepEqual(l.started, ['a0', 'b2'], 'b never served: its live load goes first')
  await l.finish('b2')
  await l.finish('a2')
  assert.deepEqual(l.started, ['a0', 'b2', 'a2'])
  assert.deepEqual(await Promise.all([running, ...live]), ['a0', 'a2', 'b2'])
  assert.deepEqual(slots.stats(), { running: 0, waiting: 0, owners: 0, dropped: 2 })
  // Joining a key whose load was dropped joins nothing.
  slots.join('k2', 'c')
  assert.deepEqual(slots.stats(), { running: 0, waiting: 0, owners: 0, dropped: 2 })
})

test('a load whose waiter has already gone is never started, even with a slot free, and takes no place', async () => {
  const slots = createLookupSlots(1, 100, 50)
  const l = loads(slots)
  const client = leavingClient()
  client.leave()
  await dropped(l.ask('a', 'a0', undefined, client.waiter))
  const next = l.ask('a', 'a1')
  assert.deepEqual(l.started, ['a1'])
  await l.finish('a1')
  assert.equal(await next, 'a1')
  assert.deepEqual(slots.stats(), { running: 0, waiting: 0, owners: 0, dropped: 1 })
})

test('a load shared by several requests waits while any of them does', async () => {
  const slots = createLookupSlots(1, 100, 50)
  const l = loads(slots)
  const [first, second] = [leavingClient(), leavingClient()]
  const waiters = new Waiters(first.waiter)
  waiters.add(second.waiter)
  const running = l.ask('a', 'a0')
  const shared = l.ask('a', 'shared', 'k', waiters)
  first.leave()
  assert.equal(slots.stats().waiting, 1, 'the second still waits')
  second.leave()
  await dropped(shared)
  await l.finish('a0')
  assert.equal(await running, 'a0')
  assert.deepEqual(l.started, ['a0'])
  assert.deepEqual(slots.stats(), { running: 0, waiting: 0, owners: 0, dropped: 1 })
})
