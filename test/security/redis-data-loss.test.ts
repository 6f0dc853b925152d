// Finding: Redis losing what the gate wrote (a restart without persistence, FLUSHALL, FLUSHDB)
// publishes nothing, and the store then read as "nothing configured": every project unknown. With
// GATE_UNKNOWN_PROJECT=allow every job token passed to every project, one its allowlist had
// refused included; under the default setting an allowlist entry's fine-grained limits and a
// format's Maintainer-only package rules were gone with it, so more passed than was configured.
//
// Now the store keeps a marker beside the data (`<prefix>:store`, a random id; in a Cluster one per
// hash slot) and every read that decides, and every write, checks its slot's marker in the same
// script: a marker gone or changed is 503 GRANTS_STORE_LOST until the data is restored (the
// marker comes back with it) or an operator accepts the loss (`job-token-gate accept-store-loss`).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRedisStore } from '../../src/grants/redis-store.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { runAcceptStoreLoss } from '../../src/cli/accept-store-loss.ts'
import { startStoreGate } from '../helpers/store-gate.ts'
import { startRedis } from '../helpers/redis.ts'
import { eventually } from '../helpers/eventually.ts'
import { TOKENS } from '../helpers/gate.ts'

const upload = (id: string): string => `/api/v4/projects/${id}/packages/generic/x/1.0.0/x.bin`

test('Redis losing its data refuses job tokens (GRANTS_STORE_LOST) instead of reading every project as unknown, until the loss is accepted', async t => {
  const redis = await startRedis(t)
  const store = await createRedisStore({ url: redis.url })
  t.after(() => store.close())
  // acme/kit (project 200) lets no other project's jobs in; GitLab shows the gate nothing of it.
  await store.put(validateProjectGrants({ projectId: 200, projectPath: 'acme/kit', inboundEnabled: true, entries: [] }, { settings: createInstanceSettings() }))
  const g = await startStoreGate(t, store, {
    projects: [{ id: 200, pathWithNamespace: 'acme/kit', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } }],
    env: { GATE_UNKNOWN_PROJECT: 'allow', GATE_GRANT_CACHE_TTL_MS: '0', GATE_GRANT_STALE_WINDOW_MS: '0' }
  })
  const put = async (id: string): Promise<{ status: number, code: unknown }> => {
    const res = await fetch(g.url + upload(id), { method: 'PUT', headers: { 'job-token': TOKENS.app }, body: 'x' })
    return { status: res.status, code: (await res.json() as Record<string, unknown>).code }
  }
  assert.deepEqual(await put('200'), { status: 403, code: 'NOT_ALLOWLISTED' })
  const saved = ['jtg:{p:200}:grants'].map(key => [key, redis.cli('hgetall', key).trim().split('\n')] as const)

  redis.cli('flushall')
  for (const id of ['200', 'acme%2Fkit']) assert.deepEqual(await put(id), { status: 503, code: 'GRANTS_STORE_LOST' }, id)
  assert.deepEqual(g.seen, [], 'nothing reached GitLab')
  const health = await store.health()
  assert.equal(health.ok, false)
  assert.match(health.detail ?? '', /lost what the gate wrote/)

  // Restored from a copy (the marker comes back with the data): decided on the data again, with
  // nothing restarted.
  for (const [key, fields] of saved) redis.cli('hset', key, ...fields)
  redis.cli('set', 'jtg:{path:acme/kit}:id', '200')
  redis.cli('set', 'jtg:store', store.marker.id!)
  assert.deepEqual(await put('200'), { status: 403, code: 'NOT_ALLOWLISTED' })

  // Lost again, and accepted: the operator's command writes the marker back (the id from the
  // trace the refused read left), and the gate decides on what the store holds now (here:
  // nothing, so GATE_UNKNOWN_PROJECT=allow defers to GitLab).
  redis.cli('flushall')
  assert.deepEqual(await put('200'), { status: 503, code: 'GRANTS_STORE_LOST' })
  assert.equal(redis.cli('get', 'jtg:store').trim(), `lost:${store.marker.id!}`, 'the replica that found the marker gone left a trace')
  const { io, out } = capture()
  assert.equal(await runAcceptStoreLoss({ env: { GATE_REDIS_URL: redis.url }, ...io }), 0)
  assert.equal(out.join(''), `store ${store.marker.id!}: 1 of 1 marker(s) written back\n`)
  await eventually(async () => (await put('200')).status === 200, { message: 'decided again after the loss was accepted' })
  assert.deepEqual(g.seen, [upload('200')])

  // Lost with no replica reading it since: no trace either, so the command needs the id.
  redis.cli('flushall')
  const second = capture()
  assert.equal(await runAcceptStoreLoss({ env: { GATE_REDIS_URL: redis.url }, ...second.io }), 1, 'no marker left and none given')
  assert.match(second.err.join(''), /holds no marker at all, nor the trace a replica leaves when it finds one gone: give the id the refusing replicas log \(--marker <id>\)/)
  assert.equal(redis.cli('exists', 'jtg:store').trim(), '0', 'the command wrote no marker of its own')
  assert.equal(await runAcceptStoreLoss({ env: { GATE_REDIS_URL: redis.url }, marker: store.marker.id!, ...second.io }), 0)
  assert.equal(redis.cli('get', 'jtg:store').trim(), store.marker.id)
})

// A replica started after a loss (a rollout, a scale-up, a restart after a crash) found no marker,
// took the store for a new one, marked it and decided on what was left: with
// GATE_UNKNOWN_PROJECT=allow it forwarded the upload the allowlist refused, while the replica that
// saw the loss refused it. The replica that finds the marker gone now leaves `lost:<id>` in its
// place, and a start that finds it refuses as that replica does.
test('a replica started after a loss that a running replica saw refuses too, rather than mark the store anew and decide on what is left', async t => {
  const redis = await startRedis(t)
  const running = await createRedisStore({ url: redis.url })
  t.after(() => running.close())
  await running.put(validateProjectGrants({ projectId: 200, projectPath: 'acme/kit', inboundEnabled: true, entries: [] }, { settings: createInstanceSettings() }))
  const options = {
    projects: [{ id: 200, pathWithNamespace: 'acme/kit', namespace: { id: 10, kind: 'group' as const, fullPath: 'acme', parentId: null } }],
    env: { GATE_UNKNOWN_PROJECT: 'allow', GATE_GRANT_CACHE_TTL_MS: '0', GATE_GRANT_STALE_WINDOW_MS: '0' }
  }
  const a = await startStoreGate(t, running, options)
  const put = async (url: string): Promise<{ status: number, code: unknown }> => {
    const res = await fetch(url + upload('200'), { method: 'PUT', headers: { 'job-token': TOKENS.app }, body: 'x' })
    return { status: res.status, code: (await res.json() as Record<string, unknown>).code }
  }
  assert.deepEqual(await put(a.url), { status: 403, code: 'NOT_ALLOWLISTED' })
  redis.cli('flushall')
  assert.equal((await running.health()).ok, false, 'readiness sees the loss')

  const started = await createRedisStore({ url: redis.url })
  t.after(() => started.close())
  assert.deepEqual(started.marker, { id: running.marker.id, created: false, probed: 1, missing: 1, other: 0 })
  const b = await startStoreGate(t, started, options)
  assert.deepEqual(await put(b.url), { status: 503, code: 'GRANTS_STORE_LOST' })
  assert.deepEqual(await put(a.url), { status: 503, code: 'GRANTS_STORE_LOST' })
  assert.deepEqual([...a.seen, ...b.seen], [], 'nothing reached GitLab')

  // Accepted: both decide on what the store holds now.
  assert.equal(await runAcceptStoreLoss({ env: { GATE_REDIS_URL: redis.url }, ...capture().io }), 0)
  for (const g of [a, b]) assert.equal((await put(g.url)).status, 200)
})

function capture (): { io: { out: (text: string) => void, err: (text: string) => void }, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { io: { out: text => { out.push(text) }, err: text => { err.push(text) } }, out, err }
}

test('accept-store-loss refuses the memory store, which has no marker', async () => {
  const err: string[] = []
  assert.equal(await runAcceptStoreLoss({ env: {}, out: () => {}, err: text => { err.push(text) } }), 2)
  assert.match(err.join(''), /the store is not Redis/)
})
