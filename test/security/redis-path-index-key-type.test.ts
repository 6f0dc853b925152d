// Finding: the store reads a path's index entry and the project it was taken from with one MGET,
// which answers "nothing" for a key holding another type than a string where GET refuses it.
// A path entry of another type (another tool's key, one set by hand) read as no project claiming
// the path, and a gate with GATE_UNKNOWN_PROJECT=allow that GitLab shows no project there (no
// service token) let any job token through to the stored project's path as an unknown project,
// its allowlist and package rules unread. The entry and its previous holder are now each checked
// to be a string or absent, and a key of another type fails the read (503, the key named).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRedisStore } from '../../src/grants/redis-store.ts'
import { GrantsStoreUnavailableError } from '../../src/grants/errors.ts'
import { grantsDoc as doc } from '../helpers/grants-doc.ts'
import { startStoreGate } from '../helpers/store-gate.ts'
import { startRedis } from '../helpers/redis.ts'
import { TOKENS } from '../helpers/gate.ts'

const upload = '/api/v4/projects/acme%2Fkit/packages/generic/x/1.0.0/x.bin'

test('a path index entry of another type fails the read, never lets a stored project\'s path through as unknown', async t => {
  const redis = await startRedis(t)
  const store = await createRedisStore({ url: redis.url })
  t.after(() => store.close())
  await store.put(doc(200, 'acme/kit'))
  // GitLab shows the gate no project at acme/kit (no service token, a private project).
  const g = await startStoreGate(t, store, { env: { GATE_UNKNOWN_PROJECT: 'allow', GATE_GRANT_CACHE_TTL_MS: '0', GATE_GRANT_STALE_WINDOW_MS: '0' } })
  const denied = await fetch(g.url + upload, { method: 'PUT', headers: { 'job-token': TOKENS.app }, body: 'x' })
  assert.equal(denied.status, 403)
  assert.equal((await denied.json() as Record<string, unknown>).code, 'UNKNOWN_PROJECT')

  for (const key of ['jtg:{path:acme/kit}:id', 'jtg:{path:acme/kit}:prev']) {
    const kept = redis.cli('GET', 'jtg:{path:acme/kit}:id').trim()
    redis.cli('DEL', key)
    redis.cli('HSET', key, 'id', '200')
    await assert.rejects(store.resolvePath('acme/kit'), (err: unknown) => err instanceof GrantsStoreUnavailableError && err.message.includes(`${key} holds a hash`))
    const res = await fetch(g.url + upload, { method: 'PUT', headers: { 'job-token': TOKENS.app }, body: 'x' })
    const body = await res.json() as Record<string, unknown>
    assert.equal(res.status, 503, JSON.stringify(body))
    assert.equal(body.code, 'GRANTS_STORE_UNAVAILABLE')
    redis.cli('DEL', key)
    if (key.endsWith(':id')) redis.cli('SET', key, kept)
  }
  assert.deepEqual(g.seen, [], 'nothing reached GitLab')
  assert.equal(await store.resolvePath('acme/kit'), 200)
})
