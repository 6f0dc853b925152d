// Finding: a Redis store write takes the path's index entry before its script checks the version
// (the entry is in another slot), and a write refused on a version conflict then removed the entry
// it had taken, whoever held it before. Another project whose document claims the path was left
// with no entry: `resolvePath` answered null, and a gate with GATE_UNKNOWN_PROJECT=allow that GitLab
// shows the project nothing at (no service token) let any job token through to that project's
// path as an unknown project, until a later write named the path again (the configuration API
// retries a refused write, but not forever, and every request in between was let through).
// Between taking the entry and its script, even a write that succeeds left the path to no one.
//
// Now the entry remembers the project it was taken from while that one's document claims the path
// (`{path:<path>}:prev`, the same slot, set in the same step), and `resolvePath` falls back to it
// while the project the entry names does not claim the path: a refused, failed or unfinished write
// leaves the path to the project that claims it.

import { after, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, connect, type Socket } from 'node:net'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createRedisStore } from '../../src/grants/redis-store.ts'
import { GrantsVersionConflictError } from '../../src/grants/errors.ts'
import { grantsDoc as doc } from '../helpers/grants-doc.ts'
import type { GrantStore } from '../../src/grants/store.ts'
import { startStoreGate } from '../helpers/store-gate.ts'
import { startRedis, tieSockets } from '../helpers/redis.ts'
import { eventually } from '../helpers/eventually.ts'
import { TOKENS } from '../helpers/gate.ts'

const redis = await startRedis({ after })
let prefixes = 0

const upload = (id: string): string => `/api/v4/projects/${id}/packages/generic/x/1.0.0/x.bin`

/** A gate without the service token, acme/kit not shown to it, unknown projects allowed. */
const gate = async (t: TestContext, store: GrantStore): Promise<{ url: string, seen: string[] }> =>
  await startStoreGate(t, store, { projects: [{ id: 200, pathWithNamespace: 'acme/kit', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } }], env: { GATE_UNKNOWN_PROJECT: 'allow', GATE_GRANT_CACHE_TTL_MS: '0', GATE_GRANT_STALE_WINDOW_MS: '0' } })

async function expectUnknownProjectDenied (url: string): Promise<void> {
  const res = await fetch(url + upload('acme%2Fkit'), { headers: { 'job-token': TOKENS.app } })
  const body = await res.json() as Record<string, unknown>
  assert.equal(res.status, 403, JSON.stringify(body))
  assert.equal(body.code, 'UNKNOWN_PROJECT')
}

const stores: Record<string, () => Promise<GrantStore>> = {
  memory: async () => await createMemoryStore(),
  redis: async () => {
    const store = await createRedisStore({ url: redis.url, keyPrefix: `refused${++prefixes}` })
    after(() => store.close())
    return store
  }
}

for (const [kind, open] of Object.entries(stores)) {
  test(`${kind}: a write refused on a version conflict leaves the path to the project that claims it`, async t => {
    const store = await open()
    // Project 200 was last written as acme/kit; project 300's write naming acme/kit loses a race.
    await store.put(doc(200, 'acme/kit'))
    await store.put(doc(300, 'old/thing'))
    const g = await gate(t, store)
    await assert.rejects(store.put(doc(300, 'acme/kit'), { expectedVersion: 0 }), GrantsVersionConflictError)
    assert.equal(await store.resolvePath('acme/kit'), 200)
    await expectUnknownProjectDenied(g.url)
    assert.deepEqual(g.seen, [])
  })
}

test('redis: while a write that takes a path runs, the path stays with the project that claims it', async t => {
  // The writer reaches Redis through a proxy that holds back its next script call (the write
  // itself, which comes after the index entry is taken) until let go.
  let hold = false
  let release: (() => void) | null = null
  const proxy = createServer((client: Socket) => {
    const upstream = connect(redis.port, '127.0.0.1')
    let holding: Buffer[] | null = null
    client.on('data', chunk => {
      if (holding !== null) { holding.push(chunk); return }
      if (hold && /\r\nEVALSHA\r\n/i.test(chunk.toString('latin1')) && /:grants\r\n/.test(chunk.toString('latin1'))) {
        hold = false
        const buffered: Buffer[] = [chunk]
        holding = buffered
        release = () => { holding = null; for (const c of buffered) upstream.write(c) }
        return
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => client.write(chunk))
    tieSockets(client, upstream)
  })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  t.after(() => proxy.close())
  const keyPrefix = `window${++prefixes}`
  const writer = await createRedisStore({ url: `redis://127.0.0.1:${(proxy.address() as { port: number }).port}`, keyPrefix, commandTimeoutMs: 5000 })
  const reader = await createRedisStore({ url: redis.url, keyPrefix })
  t.after(async () => { await writer.close(); await reader.close() })
  await writer.put(doc(200, 'acme/kit'))
  await writer.put(doc(300, 'old/thing'))
  const g = await gate(t, reader)

  hold = true
  const write = writer.put(doc(300, 'acme/kit'))
  await eventually(() => release !== null, { timeoutMs: 5000, message: 'the write reached its script' })
  assert.equal(await reader.resolvePath('acme/kit'), 200)
  await expectUnknownProjectDenied(g.url)
  release!()
  assert.equal(await write, 2)
  assert.equal(await reader.resolvePath('acme/kit'), 300)
  await expectUnknownProjectDenied(g.url)
  assert.deepEqual(g.seen, [])
})
