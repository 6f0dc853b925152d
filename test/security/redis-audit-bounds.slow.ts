// Finding: an audit page was read with XREVRANGE, whole, on the Redis store's one command
// connection. An entry of a size the gate never writes, planted in a project's audit stream by
// another tool or by hand, held that connection past the command timeout while a page read it,
// and every decision of every project queued behind it answered 503 (measured: decisions sent
// 100 to 800 ms into a page read of a 64 MiB entry waited 0.5 to 1.2 s, and answered 503). And
// nothing bounded an event the gate writes: its settings before and after were kept whole.
// Now an event is kept within MAX_AUDIT_EVENT_BYTES (past it, its before and after are replaced
// by a note of its size; the audit log line holds it whole), and a page read measures the stream
// in Redis first: one larger than the events kept can fill fails that read, naming the key.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { startRedis } from '../helpers/redis.ts'
import { TOKENS } from '../helpers/gate.ts'
import { adminGate, ADMIN } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { createRedisStore } from '../../src/grants/redis-store.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { GrantsStoreUnavailableError } from '../../src/grants/errors.ts'
import { AUDIT_EVENTS_KEPT, MAX_AUDIT_EVENT_BYTES, type AuditEvent, type GrantStore } from '../../src/grants/store.ts'

const BIG = 64 * 1024 * 1024

function event (projectId: number, before: unknown, n = 0): AuditEvent {
  return { projectId, actor: { kind: 'operator' }, action: 'import_allowlist', before, after: null, time: new Date(n).toISOString(), requestId: `req-${n}` }
}

test('a planted audit entry fails its page read in Redis, and decisions go on meanwhile', async t => {
  const redis = await startRedis(t)
  const g = await adminGate(t, { GATE_REDIS_URL: redis.url, GATE_GRANT_CACHE_TTL_MS: '0', GATE_GRANT_STALE_WINDOW_MS: '0' })
  const writer = new Redis(redis.url)
  t.after(() => writer.disconnect())
  const registry = async (): Promise<number> => (await send(g.url, 'GET', '/api/v4/projects/700/packages', { 'job-token': TOKENS.app })).status
  const page = async (): Promise<{ status: number, code: unknown }> => {
    const answer = await send(g.url, 'GET', '/api/v4/projects/200/job_token_permissions/audit_events', { 'private-token': ADMIN })
    return { status: answer.status, code: answer.json().code }
  }
  assert.equal(await registry(), 403, 'acme/registry lists only the other group')
  assert.equal((await page()).status, 200)

  await writer.xadd('jtg:{p:200}:audit', '*', 'e', Buffer.alloc(BIG, 'x'))
  for (let i = 0; i < 3; i++) {
    // Decisions one after another for as long as the page is read (three at least).
    let reading = true
    const read = page().finally(() => { reading = false })
    const decisions: number[] = []
    while (reading || decisions.length < 3) {
      decisions.push(await registry())
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    assert.deepEqual(await read, { status: 503, code: 'GRANTS_STORE_UNAVAILABLE' })
    assert.deepEqual(decisions, decisions.map(() => 403), 'decisions are made as before while the page is refused')
  }
  await assert.rejects(g.store.readAudit(200, { offset: 0, limit: 20 }),
    (err: unknown) => err instanceof GrantsStoreUnavailableError && /jtg:\{p:200\}:audit holds \d{8,} bytes, more than the gate reads/.test(err.message))
  assert.ok(g.logs.some(line => /jtg:\{p:200\}:audit holds \d{8,} bytes/.test(String(line.store_error))), 'the log names the key and the size')
})

for (const kind of ['memory', 'redis'] as const) {
  test(`${kind} store: an audit event past the bound is kept with its before and after omitted, saying so`, async t => {
    let store: GrantStore
    if (kind === 'redis') {
      const redis = await startRedis(t)
      store = await createRedisStore({ url: redis.url })
    } else {
      store = await createMemoryStore()
    }
    t.after(() => store.close())
    const small = event(1, { entries: ['a'] }, 1)
    const large = event(1, { entries: 'y'.repeat(MAX_AUDIT_EVENT_BYTES) }, 2)
    await store.appendAudit(small)
    await store.appendAudit(large)
    const { total, events } = await store.readAudit(1, { offset: 0, limit: 10 })
    assert.equal(total, 2)
    assert.deepEqual(events[1], small, 'an event within the bound is kept whole')
    const kept = events[0]!
    assert.deepEqual({ ...kept, before: undefined, after: undefined }, { ...large, before: undefined, after: undefined }, 'who, what, when and the request are kept')
    assert.match(JSON.stringify(kept.before), /"omitted":"an event of \d{4,5} bytes, more than the 8192 the store keeps of one: the audit log line of request req-2 holds it whole"/)
    assert.deepEqual(kept.after, kept.before)
    assert.ok(Buffer.byteLength(JSON.stringify(kept)) <= MAX_AUDIT_EVENT_BYTES)

    // The same through a write that carries its event.
    if (kind === 'redis') {
      const doc = { projectId: 1, projectPath: 'acme/one', inboundEnabled: true, entries: [] }
      await store.put(doc, { audit: event(1, 'z'.repeat(2 * MAX_AUDIT_EVENT_BYTES), 3) })
      const [written] = (await store.readAudit(1, { offset: 0, limit: 1 })).events
      assert.match(JSON.stringify(written!.before), /omitted/)
    }
  })
}

test('a stream of every kept event at its largest is read', async t => {
  const redis = await startRedis(t)
  const store = await createRedisStore({ url: redis.url })
  t.after(() => store.close())
  const writer = new Redis(redis.url)
  t.after(() => writer.disconnect())
  // Written as the store writes them, at the bound, in batches.
  const full = (n: number): string => {
    const base = JSON.stringify(event(3, '', n))
    return JSON.stringify(event(3, 'w'.repeat(MAX_AUDIT_EVENT_BYTES - Buffer.byteLength(base)), n))
  }
  assert.equal(Buffer.byteLength(full(0)), MAX_AUDIT_EVENT_BYTES)
  for (let from = 0; from < AUDIT_EVENTS_KEPT; from += 100) {
    const batch = writer.pipeline()
    for (let n = from; n < from + 100; n++) batch.xadd('jtg:{p:3}:audit', 'MAXLEN', String(AUDIT_EVENTS_KEPT), '*', 'e', full(n))
    await batch.exec()
  }
  const page = await store.readAudit(3, { offset: 900, limit: 100 })
  assert.equal(page.total, AUDIT_EVENTS_KEPT)
  assert.equal(page.events.length, 100)
  assert.equal(page.events[99]!.requestId, 'req-0')
})
