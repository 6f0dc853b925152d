// Finding: a configuration change is one Lua script (the document, its version, its audit event,
// its invalidation message), and Redis does not undo what a script wrote before it fails. The
// script wrote the document and bumped its version, then appended the audit event: a project's
// audit key holding anything but a stream (left there by another tool, or a key typed by hand)
// made that XADD fail, and the script stopped with the change made but without its audit event
// and without its invalidation message. A removal through one replica answered 503, was in
// effect in Redis all the same, had no trace in the store's audit stream, and the other replicas
// went on honouring the removed entry from their caches, never told. So did a namespace's
// settings, and a delete whose hash held a `version` that is no whole number (HDEL, then HINCRBY
// refused). The scripts now look at the keys they write before writing anything: a key of
// another type, or a version that is no whole number, is refused with nothing written (503,
// naming the key; the audit line says the change was not made).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis } from '../helpers/redis.ts'
import { adminGate, ADMIN } from '../helpers/admin-gate.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { createRedisStore } from '../../src/grants/redis-store.ts'
import { GrantsStoreUnavailableError } from '../../src/grants/errors.ts'
import { grantsFor } from '../grants/store-contract.ts'

// acme/registry (700) lets every job of the group other (20) publish packages: other/tools' job reads them.
const readPackages = (url: string): Promise<Response> => fetch(`${url}/api/v4/projects/700/packages`, { headers: { 'job-token': TOKENS.tools } })
const removal = (url: string): Promise<Response> => fetch(`${url}/api/v4/projects/700/job_token_scope/groups_allowlist/20`, { method: 'DELETE', headers: { 'private-token': ADMIN } })

test('a change whose audit key is no stream is refused with nothing written, never made without its audit event and invalidation', async t => {
  const redis = await startRedis(t)
  // Replica A writes; replica B decides from its cache (a minute: only an invalidation reaches it).
  const a = await adminGate(t, { GATE_REDIS_URL: redis.url })
  const b = await startTestGate(t, { GATE_REDIS_URL: redis.url, GATE_GRANT_CACHE_TTL_MS: '60000' }, { seed: false })
  assert.equal((await readPackages(b.url)).status, 200, 'acme/registry allowlists the group other')
  const before = redis.cli('HGET', 'jtg:{p:700}:grants', 'version').trim()

  // Another tool's key where the project's audit stream belongs.
  redis.cli('SET', 'jtg:{p:700}:audit', 'not a stream')
  const res = await removal(a.url)
  const body = await res.json() as Record<string, unknown>
  assert.equal(res.status, 503, JSON.stringify(body))
  assert.equal(body.code, 'GRANTS_STORE_UNAVAILABLE')

  // Nothing written: the entry, the version and the audit key are as they were.
  assert.match(redis.cli('HGET', 'jtg:{p:700}:grants', 'doc'), /"targetId":20/, 'the entry is still stored')
  assert.equal(redis.cli('HGET', 'jtg:{p:700}:grants', 'version').trim(), before)
  assert.equal(redis.cli('GET', 'jtg:{p:700}:audit').trim(), 'not a stream')
  // The audit line says the change was not made, and the log names the key.
  const line = a.logs.find(l => l.audit === true && l.request_id === body.request_id)
  assert.equal(line?.outcome, 'not_made', JSON.stringify(line))
  assert.match(JSON.stringify(line), /jtg:\{p:700\}:audit holds a string/)
  // What B answers from its cache is what the store holds.
  assert.equal((await readPackages(b.url)).status, 200)

  // The key cleared, the removal is made, audited, and reaches B at once.
  redis.cli('DEL', 'jtg:{p:700}:audit')
  const again = await removal(a.url)
  assert.equal(again.status, 204)
  assert.match(redis.cli('XRANGE', 'jtg:{p:700}:audit', '-', '+'), /remove_group_allowlist_entry/)
  for (let i = 0; ; i++) {
    const status = (await readPackages(b.url)).status
    if (status !== 200) break
    assert.ok(i < 500, 'replica B still allows the removed entry')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
})

test('store writes refuse keys of another type, and a version that is no whole number, before writing anything', async t => {
  const redis = await startRedis(t)
  const store = await createRedisStore({ url: redis.url, keyPrefix: 'kt' })
  t.after(() => store.close())
  const published: unknown[] = []
  store.subscribe(event => published.push(event))
  await store.put(grantsFor(5, 'acme/five'))
  await store.putNamespace({ namespacePath: 'acme', jobTokenPoliciesEnabled: false })
  const refused = (what: RegExp) => (err: unknown) => err instanceof GrantsStoreUnavailableError && err.unwritten && what.test(err.message)
  const event = { actor: { kind: 'operator' as const }, action: 'x', before: null, after: null, time: new Date().toISOString(), requestId: 'r' }

  redis.cli('SET', 'kt:{p:5}:audit', 'x')
  await assert.rejects(store.put(grantsFor(5, 'acme/five', { entries: [] }), { audit: { ...event, projectId: 5 } }), refused(/kt:\{p:5\}:audit holds a string, not a stream/))
  assert.equal((await store.get(5))?.entries.length, 2)
  assert.equal(await store.version(5), 1)
  redis.cli('DEL', 'kt:{p:5}:audit')

  redis.cli('HSET', 'kt:{p:5}:grants', 'version', 'one')
  await assert.rejects(store.delete(5), refused(/kt:\{p:5\}:grants holds version "one"/))
  assert.equal((await store.get(5))?.entries.length, 2, 'the document is still there')
  redis.cli('HSET', 'kt:{p:5}:grants', 'version', '1')

  redis.cli('RPUSH', 'kt:{ns:other}:settings', 'x')
  await assert.rejects(store.putNamespace({ namespacePath: 'other', jobTokenPoliciesEnabled: true }), refused(/kt:\{ns:other\}:settings holds a list, not a hash/))
  assert.equal(redis.cli('LLEN', 'kt:{ns:other}:settings').trim(), '1')

  redis.cli('SET', 'kt:{ns:acme}:audit', 'x')
  await assert.rejects(store.deleteNamespace('acme', { audit: { ...event, namespacePath: 'acme' } }), refused(/kt:\{ns:acme\}:audit holds a string/))
  assert.equal((await store.getNamespace('acme'))?.jobTokenPoliciesEnabled, false)

  // Only the two first writes were published.
  await new Promise(resolve => setTimeout(resolve, 100))
  assert.equal(published.length, 2, JSON.stringify(published))
})
