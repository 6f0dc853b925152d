// Who waits for a shared load (src/waiters.ts): gone while every waiter is, back when one
// more comes, through the loads a load serves as well.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LookupDropped, shareLoad, Waiters } from '../../src/waiters.ts'
import { leavingClient } from './world.ts'

test('a load is wanted while any of its requests waits, again when one more comes, and for good with a waiter that never goes', () => {
  const [first, second, third] = [leavingClient(), leavingClient(), leavingClient()]
  const waiters = new Waiters(first.waiter)
  const changes: boolean[] = []
  waiters.watch(() => { changes.push(waiters.gone) })
  waiters.add(second.waiter)
  first.leave()
  assert.equal(waiters.gone, false)
  second.leave()
  assert.equal(waiters.gone, true)
  waiters.add(third.waiter)
  assert.equal(waiters.gone, false, 'a request that comes while the load still runs wants it')
  waiters.add(undefined)
  third.leave()
  assert.equal(waiters.gone, false, 'a caller that names no waiter never goes')
  assert.deepEqual(changes, [true, false])
})

test('a load serving other loads (a Maven listing, the lookups of its paths) is wanted while any of theirs is', () => {
  const [a, b, late] = [leavingClient(), leavingClient(), leavingClient()]
  const pathA = new Waiters(a.waiter)
  const pathB = new Waiters(b.waiter)
  const listing = new Waiters(pathA)
  listing.add(pathB)
  a.leave()
  assert.equal(listing.gone, false)
  // A request comes back for path A: its lookup is wanted again, and so is the listing.
  pathA.add(late.waiter)
  b.leave()
  assert.equal(listing.gone, false)
  late.leave()
  assert.equal(listing.gone, true)
})

test('a settled load watches nothing any more', () => {
  const client = leavingClient()
  const waiters = new Waiters(client.waiter)
  let changes = 0
  waiters.watch(() => { changes++ })
  waiters.close()
  client.leave()
  assert.equal(changes, 0)
})

test('a load whose only waiter has gone before it begins is given up from the start', async () => {
  const client = leavingClient()
  client.leave()
  let aborted: boolean | undefined
  const shared = shareLoad(client.waiter, async signal => { aborted = signal.aborted; return 1 }, () => {})
  await assert.rejects(shared.pending, LookupDropped)
  assert.equal(aborted, true, 'no GitLab call for nobody')
})
