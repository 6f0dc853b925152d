// Finding: the configuration API read a form body's `name[]` parameters by copying the list
// read so far for each value. 40,000 `job_token_policies[]` in a 1 MiB form body (within the
// API's body limit) held the gate a minute on one request, the role checks of other requests
// timing out meanwhile. Any Maintainer of a project (any GitLab user, of a project of their
// own) could send it. Each value is now added to its list.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

/** Items that `fn` reads through arrays' iterators (spread, for...of) from arrays of 1,000 or more. */
async function iterated (fn: () => Promise<void>): Promise<number> {
  const proto = Array.prototype as unknown as { [Symbol.iterator]: () => Iterator<unknown> }
  const original = proto[Symbol.iterator]
  let count = 0
  proto[Symbol.iterator] = function (this: unknown[]) {
    if (this.length >= 1000) count += this.length
    return original.call(this)
  }
  try {
    await fn()
  } finally {
    proto[Symbol.iterator] = original
  }
  return count
}

test('a form body\'s list parameters are added to, not copied for each value', async (t) => {
  const g = await adminGate(t)
  const n = 4000
  const body = ['target_project_id=100', 'default_permissions=false', ...Array.from({ length: n }, (_, i) => `job_token_policies[]=p${i}`)].join('&')
  let answer: Awaited<ReturnType<typeof send>> | undefined
  const items = await iterated(async () => {
    answer = await send(g.url, 'POST', '/api/v4/projects/200/job_token_scope/allowlist', { 'private-token': USERS.maintainer, 'content-type': 'application/x-www-form-urlencoded' }, body)
  })
  // Every value reached the list (one longer than there are policies is refused whole:
  // test/security/admin-long-lists-unread.test.ts).
  assert.equal(answer!.status, 400, answer!.text.slice(0, 300))
  const errors = answer!.json().errors as Array<{ field: string, message: string }>
  assert.deepEqual(errors.map(e => e.field), ['job_token_policies'])
  assert.match(errors[0]!.message, new RegExp(`^lists ${n} policies;`))
  // Copied for each value, 4,000 values read 8 million items (40,000: 800 million, a minute).
  assert.ok(items < 20 * n, `${items} items read`)
})
