// Finding: the configuration API and the users' package rules keep what GitLab answers a user's
// `GET /projects/:id` (a project they see) by the token's hash and the `:id` as sent, lower-cased.
// GitLab reads an id with leading zeros as that id (`000200` is project 200), and a URL segment
// may hold 4,096 characters: any user's requests for a project they see, public or their own, its
// id spelled with thousands of zeros, each asked GitLab again and were kept whole, 10,000 of them
// for good (lru-cache drops an entry past its TTL only when asked for it or pushed out): through a
// gate, 3,000 such requests, each answered 403, grew the heap by 12 MiB, the cache full some 40 MiB.
// An id is kept without its leading zeros, and a key past 64 characters by its hash.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { heapMiB } from '../helpers/heap.ts'

test('a project id spelled with many leading zeros is kept by the id GitLab reads, and a long key by its hash', async t => {
  const g = await adminGate(t)
  // A Developer of acme/lib (200): GitLab shows the project, the Maintainer check refuses.
  const developer = { 'private-token': USERS.developer }
  const allowlist = (zeros: number): string => `/api/v4/projects/${'0'.repeat(zeros)}200/job_token_scope/allowlist`
  const lookups = (): number => g.gitlab.targets.filter(u => /^\/api\/v4\/projects\/0*200$/.test(u)).length
  const first = await send(g.url, 'GET', allowlist(0), developer)
  assert.equal(first.status, 403, first.text)
  assert.equal(first.json().code, 'ADMIN_FORBIDDEN')
  assert.equal(lookups(), 1)
  // The same project however its id is spelled: GitLab is not asked again.
  for (const zeros of [1, 2, 3990]) assert.equal((await send(g.url, 'GET', allowlist(zeros), developer)).json().code, 'ADMIN_FORBIDDEN')
  assert.equal(lookups(), 1, 'asked once for every spelling')

  // Each spelling keeps no more than the one.
  const before = heapMiB()
  for (let i = 0; i < 3000; i++) {
    const answer = await send(g.url, 'GET', allowlist(3990 - i), developer)
    assert.equal(answer.status, 403)
    // What the fake GitLab and the test's log keep of each request is not the gate's.
    g.gitlab.targets.length = 0
    g.logs.length = 0
  }
  const grown = heapMiB() - before
  assert.ok(grown < 4, `3,000 spellings of one project id grew the heap by ${grown.toFixed(1)} MiB`)
})
