// The Redis commands the gate needs, as docs/grants.md lists them: a gate whose Redis user may run
// exactly those (one by one, with the documented key pattern and channel) works through every
// path that reaches Redis (start, decision reads, configuration API writes and the path index,
// the audit page, usage recording and its report, a delete, invalidation through the
// subscription, readiness); without any one of them, what needs it fails closed (never an allow,
// with GATE_UNKNOWN_PROJECT=allow, which lets in whatever the store fails to name), and the
// failure names the command: in the decision or configuration API line's `store_error`, the
// readiness answer, or the store's error. The ACL line is read from the docs, so they cannot drift.
// In a Cluster, the same line with the Cluster commands runs the store, and without either of
// them the start fails naming it (ioredis said only "Failed to refresh slots cache.", or nothing).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { startRedis, startRedisCluster } from '../helpers/redis.ts'
import { eventually } from '../helpers/eventually.ts'
import { TOKENS, WORLD_GRANTS } from '../helpers/gate.ts'
import { adminGate, ADMIN } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { createRedisStore } from '../../src/grants/redis-store.ts'
import type { ProjectGrants } from '../../src/grants/model.ts'
import { GrantsStoreUnavailableError } from '../../src/grants/errors.ts'
import { grantsFor, nextEvent } from '../grants/store-contract.ts'

const DOC = readFileSync(new URL('../../docs/grants.md', import.meta.url), 'utf8')
const LINE = /^ACL SETUSER job-token-gate .+$/m.exec(DOC)?.[0]
const PASSWORD = 'acl-test-password'
/** `on >change-me resetkeys ~jtg:* ...`, the password replaced. */
const RULES = (LINE ?? '').split(' ').slice(3).map(rule => rule === '>change-me' ? `>${PASSWORD}` : rule)
const COMMANDS = RULES.filter(rule => rule.startsWith('+')).map(rule => rule.slice(1))
/** Refused, these skip a check and fail nothing (docs/grants.md says so). */
const SKIPPED_WITHOUT = new Set(['info'])

/** How a refusal of `command` reads: Redis's own NOPERM, or the store naming it (a script's line, a write's channel check). */
function names (command: string): RegExp {
  const upper = command.toUpperCase().replace('|', ' ')
  return new RegExp(`'${command.replace('|', '\\|')}'|refuses (?:one of )?(?:[A-Z ]+, )*${upper}\\b|the command ${upper}\\b`)
}

test('the documented ACL runs every Redis path, and each command missing fails closed, named', async t => {
  assert.ok(LINE !== undefined, 'docs/grants.md holds the ACL SETUSER line')
  assert.ok(COMMANDS.length > 20 && RULES.includes('~jtg:*') && RULES.includes('&jtg:invalidate') && RULES.includes('-@all'))
  const redis = await startRedis(t)
  redis.cli('ACL', 'SETUSER', 'job-token-gate', 'reset')
  assert.equal(redis.cli('ACL', 'SETUSER', 'job-token-gate', ...RULES).trim(), 'OK')
  const url = redis.url.replace('redis://', `redis://job-token-gate:${PASSWORD}@`)
  // No cache: every decision reads the store. A project the store fails to name would be let in.
  const g = await adminGate(t, { GATE_REDIS_URL: url, GATE_GRANT_CACHE_TTL_MS: '0', GATE_GRANT_STALE_WINDOW_MS: '0', GATE_UNKNOWN_PROJECT: 'allow' })
  const other = await createRedisStore({ url })
  t.after(() => other.close())
  const admin = { 'content-type': 'application/json', 'private-token': ADMIN }
  const job = { 'job-token': TOKENS.app }
  const tools = WORLD_GRANTS.find(doc => doc.projectId === 300)! as ProjectGrants
  const day = new Date().toISOString().slice(0, 10)
  let n = 0

  /** Every path once: what failed (status or error, with what names the cause), and any allow that must not be. */
  async function paths (): Promise<{ failed: string[], causes: string[], wrongAllows: string[] }> {
    const failed: string[] = []
    const causes: string[] = []
    const wrongAllows: string[] = []
    const from = g.logs.length
    const status = async (what: string, answer: Promise<{ status: number, text: string }>, expected: number): Promise<void> => {
      const { status: got, text } = await answer
      if (got !== expected) failed.push(`${what}: ${got} ${text.slice(0, 300)}`)
    }
    const direct = async (what: string, run: () => Promise<unknown>): Promise<void> => {
      try {
        await run()
      } catch (err) {
        failed.push(what)
        causes.push((err as Error).message)
      }
    }
    // Decisions: acme/lib allowlists acme/platform/app; acme/registry does not (a 200 would be the store read as "nothing stored").
    const lib = await send(g.url, 'GET', '/api/v4/projects/200/packages', job)
    if (lib.status !== 200) failed.push(`decision acme/lib: ${lib.status}`)
    const registry = await send(g.url, 'GET', '/api/v4/projects/700/packages', job)
    if (registry.status === 200) wrongAllows.push('decision acme/registry allowed')
    else if (registry.status !== 403) failed.push(`decision acme/registry: ${registry.status}`)
    // Configuration API writes: a project new to the store (its path indexed), and one stored (its audit event).
    await status('write acme/platform/web', send(g.url, 'PATCH', '/api/v4/projects/600/job_token_permissions', admin, JSON.stringify({ package_registry: { maven: { read: true } } })), 200)
    await status('write acme/lib', send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', admin, JSON.stringify({ package_registry: { npm: { read: n++ % 2 === 0 } } })), 200)
    await status('audit page', send(g.url, 'GET', '/api/v4/projects/200/job_token_permissions/audit_events', { 'private-token': ADMIN }), 200)
    // Usage: what the decisions above recorded, written as the gate writes it; with requests it could not keep; the report.
    await direct('usage flush', async () => await g.gate.usage.flush())
    await direct('usage record', async () => await g.store.recordUsage!([{ accessedProjectId: 200, day, jobProjectId: 100, jobProjectPath: 'acme/platform/app', ancestorGroupIds: [11, 10], requests: 1, policies: { read_packages: 1 } }],
      { maxJobProjects: 100, retentionDays: 30 }, [{ accessedProjectId: 200, day, requests: 1 }]))
    await status('usage report', send(g.url, 'GET', '/api/v4/projects/200/job_token_scope/usage', { 'private-token': ADMIN }), 200)
    // A delete (its path's index entry removed), so that the next round indexes acme/platform/web anew.
    await direct('delete', async () => { if (!await g.store.delete(600)) throw new Error('acme/platform/web was not stored') })
    // Another replica's write, heard through the subscription.
    const heard = (await send(g.healthUrl, 'GET', '/metrics')).text
    const count = (text: string): number => Number(/^job_token_gate_grant_invalidations_total (\d+)/m.exec(text)?.[1] ?? -1)
    const before = count(heard)
    await direct('another replica\'s write', async () => await other.put({ ...tools, inboundEnabled: n % 2 === 0 }))
    await direct('invalidation heard', async () => await eventually(async () => count((await send(g.healthUrl, 'GET', '/metrics')).text) > before, { timeoutMs: 3000, message: 'the invalidation' }))
    const ready = await send(g.healthUrl, 'GET', '/-/readiness')
    if (ready.status !== 200) {
      failed.push('readiness')
      causes.push(ready.text)
    }
    for (const line of g.logs.slice(from)) if (line.store_error !== undefined) causes.push(String(line.store_error))
    return { failed, causes, wrongAllows }
  }

  const all = await paths()
  assert.deepEqual(all, { failed: [], causes: [], wrongAllows: [] }, 'every path works with exactly the documented commands')

  for (const command of COMMANDS) {
    redis.cli('ACL', 'SETUSER', 'job-token-gate', `-${command}`)
    // Connections anew: a script's first use (EVAL), the ready check (INFO), the subscription.
    redis.cli('CLIENT', 'KILL', 'USER', 'job-token-gate')
    if (SKIPPED_WITHOUT.has(command)) {
      await eventually(async () => (await paths()).failed.length === 0, { timeoutMs: 10_000, message: `every path without ${command}` })
    } else {
      const refused = await eventually(async () => {
        const round = await paths()
        assert.deepEqual(round.wrongAllows, [], `without ${command}`)
        return round.causes.some(cause => names(command).test(cause)) ? round : false
      }, { timeoutMs: 10_000, message: `a path failing without ${command}, naming it` })
      assert.ok(refused.failed.length > 0, `without ${command}: ${refused.causes.join(' | ')}`)
    }
    redis.cli('ACL', 'SETUSER', 'job-token-gate', `+${command}`)
    await eventually(async () => {
      const round = await paths()
      assert.deepEqual(round.wrongAllows, [])
      return round.failed.length === 0
    }, { timeoutMs: 10_000, message: `every path again with ${command}` })
  }
})

test('in a Cluster, the documented ACL with its Cluster commands runs the store; without them the start fails, naming them', async t => {
  const cluster = await startRedisCluster(t)
  const setUser = (...extra: string[]): void => {
    for (const node of cluster.nodes) assert.equal(node.cli('ACL', 'SETUSER', 'job-token-gate', 'reset', ...RULES, ...extra).trim(), 'OK')
  }
  const open = async (seed: number): Promise<Awaited<ReturnType<typeof createRedisStore>>> => {
    const store = await createRedisStore({ cluster: [cluster.seeds[seed]!], username: 'job-token-gate', password: PASSWORD, connectTimeoutMs: 3000 })
    t.after(() => store.close())
    return store
  }
  for (const missing of ['cluster|slots', 'cluster|info']) {
    setUser(...['cluster|slots', 'cluster|info'].filter(c => c !== missing).map(c => `+${c}`))
    await assert.rejects(open(0), (err: unknown) => err instanceof GrantsStoreUnavailableError && names(missing).test(err.message), `without ${missing}`)
  }
  setUser('+cluster|slots', '+cluster|info')
  // Writer and reader seeded with different nodes: the invalidation crosses nodes.
  const [writer, reader] = [await open(0), await open(2)]
  const heard = nextEvent(reader, e => e.kind === 'project' && e.projectId === 7)
  await writer.put(grantsFor(7, 'acme/seven'), { audit: { projectId: 7, actor: { kind: 'operator' }, action: 'update_inbound_scope', before: null, after: null, time: new Date(0).toISOString(), requestId: 'r' } })
  await heard
  assert.equal((await reader.get(7))?.projectPath, 'acme/seven')
  assert.equal(await reader.resolvePath('acme/seven'), 7)
  assert.equal((await reader.readAudit(7, { offset: 0, limit: 10 })).total, 1)
  const day = new Date().toISOString().slice(0, 10)
  await writer.recordUsage!([{ accessedProjectId: 7, day, jobProjectId: 8, jobProjectPath: 'acme/eight', ancestorGroupIds: [], requests: 2, policies: {} }], { maxJobProjects: 10, retentionDays: 1 }, [{ accessedProjectId: 7, day, requests: 1 }])
  assert.equal((await reader.readUsage!(7, [day]))[0]?.requests, 2)
  assert.deepEqual(await reader.readDroppedUsage!(7, [day]), { [day]: 1 })
  assert.equal((await reader.health()).ok, true)
})
