// Least-privilege usage: recorded off the request path for allowed job-token requests only,
// kept bounded by both stores, and turned into a per-entry suggestion of minimal policies.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createRedisStore } from '../../src/grants/redis-store.ts'
import { createInstanceSettings, validateProjectGrants, type AllowlistEntry } from '../../src/grants/model.ts'
import type { GrantStore } from '../../src/grants/store.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { createUsageRecorder } from '../../src/usage/recorder.ts'
import { buildUsageReport, parseUsageWindow, suggestPolicies, usageReport } from '../../src/usage/report.ts'
import { daysBetween, type UsageIncrement } from '../../src/usage/types.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { scrape, total } from '../helpers/metrics.ts'
import { startRedis } from '../helpers/redis.ts'

const policies = createPolicyIndex(loadCatalog().policies)
const entry = (targetType: 'project' | 'group', targetId: number, jobTokenPolicies: string[] | null): AllowlistEntry => ({
  targetType, targetId, defaultPermissions: jobTokenPolicies === null, jobTokenPolicies: jobTokenPolicies ?? [], addedBy: null, createdAt: '2026-01-01T00:00:00Z'
})

test('suggestPolicies: the used policies, without a read_X that a used admin_X implies', () => {
  const cases: Array<[string[], string[]]> = [
    [[], []],
    [['read_packages'], ['read_packages']],
    [['read_packages', 'admin_packages'], ['admin_packages']],
    [['admin_deployments', 'read_deployments', 'read_environments'], ['admin_deployments', 'read_environments']],
    [['read_jobs', 'read_releases', 'admin_releases', 'read_work_items'], ['admin_releases', 'read_jobs', 'read_work_items']]
  ]
  for (const [used, expected] of cases) assert.deepEqual(suggestPolicies(used, policies), expected, used.join(','))
})

test('buildUsageReport: usage goes to the nearest entry; unmatched usage is listed apart', () => {
  const entries = [entry('project', 100, ['read_packages', 'admin_releases']), entry('group', 10, null), entry('group', 11, ['read_jobs'])]
  const row = (jobProjectId: number, ancestors: number[], requests: number, used: Record<string, number>, day = '2026-11-20'): UsageIncrement =>
    ({ accessedProjectId: 200, day, jobProjectId, jobProjectPath: `p/${jobProjectId}`, ancestorGroupIds: ancestors, requests, policies: used })
  const report = buildUsageReport(200, entries, [
    row(100, [11, 10], 3, { read_packages: 3 }),
    row(100, [11, 10], 1, { read_packages: 1 }, '2026-11-21'),
    row(101, [11, 10], 2, { read_jobs: 2 }),
    row(102, [10], 5, { admin_packages: 2, read_packages: 3, read_deployments: 1 }),
    row(900, [90], 4, { read_releases: 4 })
  ], policies, { sinceMs: Date.parse('2026-11-20T00:00:00Z'), untilMs: Date.parse('2026-11-21T12:00:00Z') })
  const [project, acme, platform] = report.entries
  assert.equal(project!.requests, 4)
  assert.deepEqual(project!.used_policies, { read_packages: 4 })
  assert.deepEqual(project!.suggested_job_token_policies, ['read_packages'])
  assert.deepEqual(project!.unused_policies, ['admin_releases'])
  assert.deepEqual(acme!.suggested_job_token_policies, ['admin_packages', 'read_deployments'], 'a default-permissions entry gets a fine-grained suggestion')
  assert.equal(acme!.default_permissions, true)
  assert.deepEqual(acme!.unused_policies, [])
  assert.deepEqual(acme!.job_projects, [{ id: 102, path: 'p/102', requests: 5 }])
  assert.deepEqual(platform!.suggested_job_token_policies, ['read_jobs'], 'the subgroup entry is nearer than acme for project 101')
  assert.deepEqual(report.unmatched, [{ job_project_id: 900, job_project_path: 'p/900', requests: 4, used_policies: { read_releases: 4 }, requests_without_policies: 0 }])
  assert.equal(report.since, '2026-11-20T00:00:00.000Z')
})

test('daysBetween: UTC days, bounded', () => {
  assert.deepEqual(daysBetween(Date.parse('2026-11-19T23:00:00Z'), Date.parse('2026-11-21T01:00:00Z'), 30), ['2026-11-19', '2026-11-20', '2026-11-21'])
  assert.deepEqual(daysBetween(0, Date.parse('2026-11-21T01:00:00Z'), 2), ['2026-11-20', '2026-11-21'])
})

// The same behaviour from both stores.
const redis = await startRedis({ after })
let prefixes = 0
const backends: Array<[string, () => Promise<GrantStore>]> = [
  ['memory', () => createMemoryStore()],
  ['redis', async () => {
    const store = await createRedisStore({ url: redis.url, keyPrefix: `usage${++prefixes}` })
    after(() => store.close())
    return store
  }]
]
for (const [name, open] of backends) {
  test(`${name} store: usage adds up per day and job project, capped per accessed project and day`, async () => {
    const store = await open()
    const inc = (jobProjectId: number, day: string, used: Record<string, number>, requests = 1): UsageIncrement =>
      ({ accessedProjectId: 200, day, jobProjectId, jobProjectPath: `g/p${jobProjectId}`, ancestorGroupIds: [10], requests, policies: used })
    const limits = { maxJobProjects: 2, retentionDays: 30 }
    const today = new Date().toISOString().slice(0, 10)
    assert.deepEqual(await store.recordUsage!([inc(1, today, { read_packages: 1 }), inc(2, today, {}, 2)], limits), { dropped: 0 })
    assert.deepEqual(await store.recordUsage!([inc(1, today, { read_packages: 2, admin_packages: 1 }, 3), inc(3, today, { read_jobs: 1 })], limits), { dropped: 1 }, 'a third job project is over the cap')
    const rows = (await store.readUsage!(200, [today])).sort((a, b) => a.jobProjectId - b.jobProjectId)
    assert.deepEqual(rows.map(r => [r.jobProjectId, r.jobProjectPath, r.ancestorGroupIds, r.requests, r.policies]), [
      [1, 'g/p1', [10], 4, { read_packages: 3, admin_packages: 1 }],
      [2, 'g/p2', [10], 2, {}]
    ])
    assert.deepEqual(await store.readDroppedUsage!(200, [today, '2000-01-01']), { [today]: 1 }, 'the requests over the cap are counted')
    assert.deepEqual(await store.readDroppedUsage!(201, [today]), {})
    assert.deepEqual(await store.readUsage!(201, [today]), [])
    assert.deepEqual(await store.readUsage!(200, ['2000-01-01']), [])
  })
}

test('recorder: batches off the request path; a failing store is counted, never thrown', async () => {
  const store = await createMemoryStore()
  const failures: unknown[] = []
  let dropped = 0
  const failing: GrantStore = { ...store, recordUsage: async () => { throw new Error('store down') } }
  const recorder = createUsageRecorder({ store: failing, limits: { maxJobProjects: 10, retentionDays: 1 }, flushIntervalMs: 60_000, maxPending: 2, onWriteFailed: err => failures.push(err), onDropped: n => { dropped += n } })
  const job = (id: number): { jobProjectId: number, jobProjectPath: string, ancestorGroupIds: number[] } => ({ jobProjectId: id, jobProjectPath: `g/${id}`, ancestorGroupIds: [] })
  recorder.record(200, job(1), ['read_packages'])
  recorder.record(200, job(1), ['read_packages'])
  recorder.record(200, job(2), [])
  recorder.record(200, job(3), [])
  assert.equal(dropped, 1, 'the pending batch is bounded')
  await recorder.flush()
  assert.equal(failures.length, 1)
  await recorder.close()

  const ok = createUsageRecorder({ store, limits: { maxJobProjects: 10, retentionDays: 1 }, flushIntervalMs: 60_000 })
  ok.record(200, job(1), ['read_packages', 'read_jobs'])
  ok.record(200, job(1), ['read_packages'])
  assert.deepEqual(await store.readUsage!(200, daysBetween(Date.now(), Date.now(), 1)), [], 'nothing is written before a flush')
  await ok.close()
  const [row] = await store.readUsage!(200, daysBetween(Date.now(), Date.now(), 1))
  assert.equal(row!.requests, 2)
  assert.deepEqual(row!.policies, { read_packages: 2, read_jobs: 1 })
})

test('through the gate: allowed job-token requests are recorded, denies and self access are not', async (t) => {
  const g = await startTestGate(t)
  const settings = createInstanceSettings()
  // other/tools lets every acme job in with default permissions.
  await g.store.put(validateProjectGrants({ projectId: 300, projectPath: 'other/tools', inboundEnabled: true, entries: [entry('group', 10, null)] }, { settings, policies }))
  const job = { 'job-token': TOKENS.app }
  const expect = async (method: string, path: string, status: number): Promise<void> => assert.equal((await send(g.url, method, path, job)).status, status, `${method} ${path}`)
  await expect('GET', '/api/v4/projects/200/packages', 200)
  await expect('GET', '/api/v4/projects/200/packages/5', 200)
  await expect('PUT', '/api/v4/projects/200/packages/npm/foo', 403)
  await expect('GET', '/api/v4/projects/200/packages/conan/v1/conans/search?q=foo', 200)
  await expect('POST', '/api/v4/projects/300/deployments', 200)
  await expect('GET', '/api/v4/projects/300/deployments', 200)
  await expect('GET', '/api/v4/projects/100/releases', 200)
  await g.gate.usage.flush()

  const since = Date.now() - 3_600_000
  const lib = await usageReport(g.store, 200, { sinceMs: since, policies })
  const appEntry = lib.entries.find(e => e.target_type === 'project' && e.target_id === 100)!
  assert.equal(appEntry.requests, 3, 'two package reads and one skip-policies request; the deny is not counted')
  assert.deepEqual(appEntry.used_policies, { read_packages: 2 })
  assert.deepEqual(appEntry.suggested_job_token_policies, ['read_packages'])
  assert.deepEqual(appEntry.job_projects, [{ id: 100, path: 'acme/platform/app', requests: 3 }])

  const tools = await usageReport(g.store, 300, { sinceMs: since, policies })
  assert.equal(tools.entries.length, 1)
  assert.deepEqual(tools.entries[0]!.used_policies, { admin_deployments: 1, admin_environments: 1, read_deployments: 1 })
  assert.deepEqual(tools.entries[0]!.suggested_job_token_policies, ['admin_deployments', 'admin_environments'])
  assert.deepEqual((await usageReport(g.store, 100, { sinceMs: since, policies })).entries, [], 'self access is not recorded')

  const { samples } = await scrape(g.healthUrl)
  assert.equal(total(samples, 'job_token_gate_usage_records_total'), 5)
  assert.equal(total(samples, 'job_token_gate_usage_write_errors_total'), 0)
  assert.ok(total(samples, 'job_token_gate_usage_flushes_total') >= 1)
})

test('GATE_USAGE_RECORDING=false records nothing', async (t) => {
  const g = await startTestGate(t, { GATE_USAGE_RECORDING: 'false' })
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.app })).status, 200)
  await g.gate.usage.flush()
  const report = await usageReport(g.store, 200, { sinceMs: Date.now() - 60_000, policies })
  assert.ok(report.entries.every(e => e.requests === 0))
})

test('parseUsageWindow: days or since, bounded by the retention', () => {
  const now = Date.parse('2026-11-21T12:00:00Z')
  const q = (s: string): URLSearchParams => new URLSearchParams(s)
  assert.deepEqual(parseUsageWindow(q(''), now), { sinceMs: now - 30 * 86_400_000 })
  assert.deepEqual(parseUsageWindow(q('days=7'), now), { sinceMs: now - 7 * 86_400_000 })
  assert.deepEqual(parseUsageWindow(q('since=2026-11-20'), now), { sinceMs: Date.parse('2026-11-20T00:00:00Z') })
  assert.deepEqual(parseUsageWindow(q('since=2000-01-01'), now, 90), { sinceMs: now - 90 * 86_400_000 })
  for (const bad of ['days=0', 'days=91', 'days=x', 'since=yesterday', 'since=2027-01-01']) assert.ok('error' in parseUsageWindow(q(bad), now, 90), bad)
})

test('redis store: usage lives in the project slot and expires after the retention', async () => {
  const prefix = `usagekeys${++prefixes}`
  const store = await createRedisStore({ url: redis.url, keyPrefix: prefix })
  after(() => store.close())
  const day = new Date().toISOString().slice(0, 10)
  await store.recordUsage!([{ accessedProjectId: 42, day, jobProjectId: 7, jobProjectPath: 'g/p', ancestorGroupIds: [1], requests: 1, policies: { read_jobs: 1 } }], { maxJobProjects: 5, retentionDays: 2 })
  assert.equal(redis.cli('--scan', '--pattern', `${prefix}:{p:*`).trim(), `${prefix}:{p:42}:usage:${day}`)
  const ttl = Number(redis.cli('ttl', `${prefix}:{p:42}:usage:${day}`).trim())
  assert.ok(ttl > 86_400 && ttl <= 2 * 86_400, `ttl ${ttl}`)
})
