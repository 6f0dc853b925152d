// Finding: Redis does not undo what a script wrote before one of its commands failed, and a
// configuration change's script writes the document, then appends the audit event, then publishes
// the invalidation. A Redis user whose ACL keeps the channel from it (Redis 7 gives new users no
// channel unless `acl-pubsub-default allchannels`, or an ACL tightened while the gate runs, which
// also cuts its subscription) had every change committed, its audit event written, and its PUBLISH
// refused: 503 for a change made, and no replica told of it. (Keys are safe: Redis checks a
// script's declared keys against the ACL before running it; channels it does not.) The write
// scripts now ask Redis (`redis.acl_check_cmd`, Redis 7) whether the user may publish on the
// channel before writing anything: a change the ACL would cut short is refused with nothing
// written (503, naming the channel, the audit line `not_made`).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis } from '../helpers/redis.ts'
import { createRedisStore } from '../../src/grants/redis-store.ts'
import { GrantsStoreUnavailableError } from '../../src/grants/errors.ts'
import { grantsFor } from '../grants/store-contract.ts'

test('a change the Redis ACL would cut short is refused with nothing written', async t => {
  const redis = await startRedis(t)
  redis.cli('ACL', 'SETUSER', 'gate', 'on', '>gate-pw', '~*', '&*', '+@all')
  const store = await createRedisStore({ url: redis.url.replace('redis://', 'redis://gate:gate-pw@') })
  t.after(() => store.close())
  await store.put(grantsFor(5, 'acme/five'))
  const audit = { projectId: 5, actor: { kind: 'operator' as const }, action: 'remove_project_allowlist_entry', before: null, after: null, time: new Date().toISOString(), requestId: 'r' }
  const unchanged = (): void => {
    assert.equal(redis.cli('HGET', 'jtg:{p:5}:grants', 'version').trim(), '1')
    assert.equal(redis.cli('XLEN', 'jtg:{p:5}:audit').trim(), '0')
  }
  const refused = (what: RegExp) => (err: unknown) => err instanceof GrantsStoreUnavailableError && err.unwritten && what.test(err.message)

  // The channel taken from the user (its subscription is cut and refused from then on).
  redis.cli('ACL', 'SETUSER', 'gate', 'resetchannels', '&other')
  await assert.rejects(store.put(grantsFor(5, 'acme/five', { entries: [] }), { expectedVersion: 1, audit }), refused(/may not PUBLISH jtg:invalidate/))
  unchanged()
  await assert.rejects(store.putNamespace({ namespacePath: 'acme', jobTokenPoliciesEnabled: false }), refused(/may not PUBLISH jtg:invalidate/))
  assert.equal(redis.cli('EXISTS', 'jtg:{ns:acme}:settings').trim(), '0')

  // Given back, the change is made with both.
  redis.cli('ACL', 'SETUSER', 'gate', 'allchannels')
  assert.equal(await store.put(grantsFor(5, 'acme/five', { entries: [] }), { expectedVersion: 1, audit }), 2)
  assert.equal(redis.cli('XLEN', 'jtg:{p:5}:audit').trim(), '1')
})
