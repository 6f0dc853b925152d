// Finding: bodies read whole before a decision (a form or JSON body on a job-token route, up to
// 64 KiB; a GraphQL or configuration API body, up to 1 MiB) were held for as long as their
// clients took to send them, with no bound across requests. Anyone, with no token, could open
// connections to /api/graphql that send 1 MB of a longer body and then nothing: each held its
// megabyte until the client timeout, and about 400 of them took the gate past the sidecar's
// 384 MiB memory limit, to be killed with every request in flight. The gate now counts those
// bytes against one budget (GATE_BODY_BUDGET_BYTES) and refuses a read past it with a 503.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import { loadConfig, ConfigError } from '../../src/config.ts'
import { BodyBudgetExhausted, createBodyBudget, readUpTo } from '../../src/read-body.ts'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { scrape, total } from '../helpers/metrics.ts'

const BUDGET = 2 << 20
const STALLED_BYTES = 1_040_000

function stalledGraphql (url: string): Promise<Socket> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname, () => {
      // Declares more than it sends: the gate reads what comes and waits for the rest.
      socket.write(`POST /api/graphql HTTP/1.1\r\nHost: gitlab.example\r\nContent-Type: application/json\r\nContent-Length: ${STALLED_BYTES + 60_000}\r\n\r\n`)
      socket.write(Buffer.alloc(STALLED_BYTES, 0x20))
      resolve(socket)
    })
    socket.on('error', reject)
  })
}

const held = async (healthUrl: string): Promise<number> => total((await scrape(healthUrl)).samples, 'job_token_gate_request_body_bytes', { state: 'held' })

test('bodies held while their clients send them stay within the budget; past it a read is refused with a 503, and nothing is forwarded', async (t) => {
  const g = await startTestGate(t, { GATE_BODY_BUDGET_BYTES: String(BUDGET) })
  const sockets: Socket[] = []
  t.after(() => { for (const s of sockets) s.destroy() })
  for (let i = 0; i < 2; i++) sockets.push(await stalledGraphql(g.url))
  await eventually(async () => await held(g.healthUrl) >= 2 * STALLED_BYTES, { message: 'both stalled bodies held' })
  assert.equal(total((await scrape(g.healthUrl)).samples, 'job_token_gate_request_body_bytes', { state: 'budget' }), BUDGET)

  // A job token's own project, a form body read to find credentials: allowed, once it fits.
  const form = `name=v1&description=${'x'.repeat(30_000)}`
  const release = (): ReturnType<typeof send> => send(g.url, 'POST', '/api/v4/projects/100/releases', { 'job-token': TOKENS.app, 'content-type': 'application/x-www-form-urlencoded' }, form)
  const refused = await release()
  assert.equal(refused.status, 503)
  assert.equal(refused.json().code, 'BODY_BUDGET_EXHAUSTED')
  assert.equal(g.seen.filter(r => r.url.includes('/releases')).length, 0, 'a refused read forwards nothing')
  // GraphQL's own reader counts against the same budget.
  const graphql = await send(g.url, 'POST', '/api/graphql', { 'content-type': 'application/json' }, JSON.stringify({ query: `{ a${' '.repeat(40_000)} }` }))
  assert.equal(graphql.status, 503)
  assert.equal(graphql.json().code, 'BODY_BUDGET_EXHAUSTED')
  assert.ok(await held(g.healthUrl) <= BUDGET, 'never more held than the budget')

  // The stalled clients leave: their bytes are given back, and the same request passes.
  for (const s of sockets) s.destroy()
  await eventually(async () => await held(g.healthUrl) === 0, { message: 'every byte given back' })
  const allowed = await release()
  assert.equal(allowed.status, 200, allowed.text)
  assert.equal(g.seen.filter(r => r.url.includes('/releases')).length, 1)
  assert.equal(await held(g.healthUrl), 0)
})

test('readUpTo gives back what it took however the read ends, and a chunk past the budget leaves the stream paused', async () => {
  const budget = createBodyBudget(100)
  const whole = await readUpTo(Readable.from([Buffer.alloc(30), Buffer.alloc(30)]), 1000, budget)
  assert.equal(whole.complete, true)
  assert.equal(budget.held, 0)
  const longer = await readUpTo(Readable.from([Buffer.alloc(30), Buffer.alloc(30)]), 40, budget)
  assert.equal(longer.complete, false)
  assert.equal(budget.held, 0)
  const failing = new Readable({ read () {} })
  const failed = readUpTo(failing, 1000, budget)
  failing.push(Buffer.alloc(50))
  await new Promise(resolve => setImmediate(resolve))
  assert.equal(budget.held, 50, 'held while the client sends')
  failing.destroy(new Error('reset'))
  await assert.rejects(failed, /reset/)
  assert.equal(budget.held, 0)

  // Another read holds 60: a second one may take 40 more, not 41.
  assert.equal(budget.take(60), true)
  const over = new Readable({ read () {} })
  const refused = readUpTo(over, 1000, budget)
  over.push(Buffer.alloc(40))
  over.push(Buffer.alloc(1))
  await assert.rejects(refused, BodyBudgetExhausted)
  assert.equal(budget.held, 60)
  assert.equal(over.isPaused(), true)
  budget.give(60)
  // Without a bound every read fits.
  const unbounded = createBodyBudget(0)
  assert.equal((await readUpTo(Readable.from([Buffer.alloc(5000)]), 10_000, unbounded)).complete, true)
  assert.equal(unbounded.held, 0)
})

test('GATE_BODY_BUDGET_BYTES: 0 is no bound; below one whole read the start stops, naming it', () => {
  const base = { GATE_UPSTREAM_URL: 'http://127.0.0.1:1' }
  assert.equal(loadConfig(base).bodyBudgetBytes, 128 << 20)
  assert.equal(loadConfig({ ...base, GATE_BODY_BUDGET_BYTES: '0' }).bodyBudgetBytes, 0)
  assert.throws(() => loadConfig({ ...base, GATE_BODY_BUDGET_BYTES: String(1 << 20) }), (err: Error) => err instanceof ConfigError && /GATE_BODY_BUDGET_BYTES must be 0 \(no bound\) or at least 2097152/.test(err.message))
  assert.throws(() => loadConfig({ ...base, GATE_BODY_BUDGET_BYTES: String(3 << 20), GATE_MAX_INSPECTED_BODY_BYTES: String(2 << 20) }), /at least 4194304/)
})
