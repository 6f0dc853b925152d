// Finding: a Redis write that records a project's new path (GitLab renamed or transferred it since
// its last write) removes the old path's index entry after the write's script committed. That
// clean-up failing (a command timeout, Redis stalled for a moment) failed the request: 503, and the
// audit line `not confirmed: it may have been made`, for a change that was made, its audit event
// and invalidation already in Redis; a client retrying a removal then got 404. The old entry left
// behind is harmless (resolvePath trusts an entry only while the project's record claims the path),
// so the committed write is now answered as made.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis, startRedisRelay } from '../helpers/redis.ts'
import { adminGate, ADMIN } from '../helpers/admin-gate.ts'

test('a committed write is answered as made though removing the old path\'s index entry failed', async t => {
  const redis = await startRedis(t)
  const relay = await startRedisRelay(t, redis)
  const gate = await adminGate(t, { GATE_REDIS_URL: relay.url })
  // acme/lib (200) was last written under the path it had before GitLab renamed it.
  const stored = await gate.store.get(200)
  const { version: _v, ...doc } = stored!
  await gate.store.put({ ...doc, projectPath: 'acme/old-lib' })

  // The old path's clean-up, after the write's script, held past the 1 s command timeout.
  relay.holdNext(/evalsha[\s\S]*\{path:acme\/old-lib\}:id/i, 1500)
  const res = await fetch(`${gate.url}/api/v4/projects/200/job_token_scope/allowlist/100`, { method: 'DELETE', headers: { 'private-token': ADMIN } })
  assert.equal(res.status, 204, await res.text())
  // The relay passes the held command on after the others it was given since: the gate's next
  // commands wait until it has, or their answers would come in another order than they were sent.
  await new Promise(resolve => setTimeout(resolve, 1000))
  const written = JSON.parse(redis.cli('HGET', 'jtg:{p:200}:grants', 'doc')) as { projectPath: string, entries: Array<{ targetId: number }> }
  assert.equal(written.projectPath, 'acme/lib')
  assert.ok(!written.entries.some(e => e.targetId === 100))
  const line = gate.logs.find(l => l.audit === true && l.action === 'remove_project_allowlist_entry')
  assert.equal(line?.level, 30, JSON.stringify(line))
  assert.equal(line?.outcome, undefined)
  // The entry left behind names no project.
  assert.equal(await gate.store.resolvePath('acme/old-lib'), null)
  assert.equal(await gate.store.resolvePath('acme/lib'), 200)
})
