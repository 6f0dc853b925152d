// Finding: the Redis store's path index (`resolvePath`) was decided and written in two steps: a
// write read the index entry and the records it names ("takesIndex"), then SET it, with other
// replicas' writes free to run in between. A write that found its own project in the entry (and
// so set it again to itself) could land after another project's write had rightly taken the
// entry: the entry then named the project whose path was old news, and once that project's next
// write recorded its real path, the entry was removed, leaving the project that holds the path
// with no entry at all. `resolvePath` answered null for a path a stored project claims; with
// GATE_UNKNOWN_PROJECT=allow and a project GitLab does not show the gate (no service token), a
// job token naming that project by path was let through as an unknown project.
//
// Now the entry is written only if it still holds what the decision read (a compare-and-set on
// the index key, retried on a change), so a stale decision never overwrites a newer one.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, connect, type Socket } from 'node:net'
import { createRedisStore } from '../../src/grants/redis-store.ts'
import { grantsDoc as doc } from '../helpers/grants-doc.ts'
import { startRedis, tieSockets } from '../helpers/redis.ts'
import { eventually } from '../helpers/eventually.ts'


test('two replicas writing one path at once leave its index entry to a project that claims it', async t => {
  const redis = await startRedis(t)
  // Replica A reaches Redis through a proxy that can hold back Redis's answer to its next read of
  // the path index: A decides on what it read, and acts only once let go.
  let hold = false
  let held: (() => void) | null = null
  const proxy = createServer((client: Socket) => {
    const upstream = connect(redis.port, '127.0.0.1')
    let holding: Buffer[] | null = null
    client.on('data', chunk => {
      const text = chunk.toString('latin1')
      // The read of the index entry: a script that reads it with the store's marker.
      if (hold && /\r\n(M?GET|EVALSHA)\r\n/i.test(text) && /path:acme\/app/.test(text)) {
        hold = false
        const buffered: Buffer[] = []
        holding = buffered
        held = () => { holding = null; for (const c of buffered) client.write(c) }
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => { if (holding !== null) holding.push(chunk); else client.write(chunk) })
    tieSockets(client, upstream)
  })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  t.after(() => proxy.close())
  const a = await createRedisStore({ url: `redis://127.0.0.1:${(proxy.address() as { port: number }).port}/0`, commandTimeoutMs: 5000 })
  const b = await createRedisStore({ url: redis.url + '/0' })
  t.after(async () => { await a.close(); await b.close() })

  // Project 300 was acme/app when last written; GitLab has since renamed it, and project 400 holds acme/app.
  await a.put(doc(300, 'acme/app'))
  assert.equal(await b.resolvePath('acme/app'), 300)

  // Replica A writes 300 again under the path it stored (an operator's write, no service token to
  // ask GitLab): it reads the index entry (300), and its answer is held. Meanwhile replica B
  // writes 400 with acme/app, GitLab's news.
  hold = true
  const stale = a.put(doc(300, 'acme/app'))
  await eventually(() => held !== null, { timeoutMs: 5000, message: 'replica A read the index entry' })
  await b.put(doc(400, 'acme/app'))
  assert.equal(await b.resolvePath('acme/app'), 400)
  held!()
  await stale

  // 300 is written again with the path GitLab gives it now.
  await b.put(doc(300, 'other/x'))
  assert.equal(await b.resolvePath('other/x'), 300)
  assert.equal(await b.resolvePath('acme/app'), 400, 'project 400 claims acme/app: the index must name it')
})
