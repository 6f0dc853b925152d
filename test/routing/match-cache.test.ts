// The router's cache of slow-path matches (globs, leaf matchers) and the other per-request
// shortcuts of the hot path: each must answer exactly what the uncached computation answers.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { loadCatalog } from '../../src/catalog/load.ts'
import { Router } from '../../src/routing/router.ts'
import { tokenKey } from '../../src/identity/cache.ts'
import { createUsageRecorder } from '../../src/usage/recorder.ts'
import type { UsageIncrement } from '../../src/usage/types.ts'
import { trustedPeers } from '../../src/config.ts'

const routes = loadCatalog().routes

test('a cached glob match is the same answer as a fresh router\'s, frozen, and served again', () => {
  const cached = Router.compile(routes)
  const paths = [
    ['GET', '/projects/42/packages/generic/tool/1.2.3/dir/tool.tar.gz'],
    ['GET', '/projects/42/jobs/artifacts/main/raw/dist/app.js'],
    ['GET', '/projects/42/releases/permalink/latest/downloads/bin/app'],
    ['GET', '/projects/42/deployments']
  ] as const
  for (const [method, path] of paths) {
    const first = cached.match(method, path)
    const again = cached.match(method, path)
    const fresh = Router.compile(routes).match(method, path)
    assert.ok(first !== null, path)
    assert.deepEqual({ ...again, params: { ...again!.params } }, { ...fresh, params: { ...fresh!.params } }, path)
    if (path.includes('generic') || path.includes('artifacts') || path.includes('permalink')) {
      assert.equal(again, first, `${path}: the second lookup is the cached object`)
      assert.ok(Object.isFrozen(first) && Object.isFrozen(first.params), `${path}: a shared match is frozen`)
      assert.throws(() => { (first.params as Record<string, string>).id = '1' }, TypeError)
    }
  }
})

test('one glob path under two methods keeps two matches, each its method\'s route', () => {
  const router = Router.compile(routes)
  const path = '/projects/42/packages/generic/tool/1.2.3/dir/tool.tar.gz'
  for (const order of [['PUT', 'GET'], ['GET', 'PUT']] as const) {
    const fresh = Router.compile(routes)
    for (const method of order) {
      const first = router.match(method, path)
      assert.equal(first?.route.method, method, `${order.join(' then ')}: ${method}`)
      assert.equal(router.match(method, path), first, `${method}: served again from the cache`)
      assert.equal(fresh.match(method, path)?.route.id, first!.route.id, `${method}: as a fresh router answers`)
    }
  }
  assert.notEqual(router.match('GET', path)?.route.id, router.match('PUT', path)?.route.id)
})

test('the match cache is bounded and never keeps a very long path', () => {
  const router = Router.compile(routes)
  const size = (): number => (router as unknown as { matches: Map<string, unknown> }).matches.size
  for (let i = 0; i < 5000; i++) router.match('GET', `/projects/${i}/packages/generic/p/1.0.0/f${i}.bin`)
  assert.equal(size(), 4096)
  const long = `/projects/1/packages/generic/p/1.0.0/${'d/'.repeat(400)}f.bin`
  assert.equal(router.match('GET', long)?.route.id, 'get_projects_id_packages_generic_package_name_package_version_path_file_name')
  assert.equal(size(), 4096)
  assert.equal(router.match('GET', '/projects/1/packages/generic/p/1.0.0/f1.bin')?.params.file_name, 'f1.bin')
})

test('tokenKey is the SHA-256 hex of the token', () => {
  for (const token of ['glcbt-64_abc', 'glcbt-é√', '']) {
    assert.equal(tokenKey(token), createHash('sha256').update(token).digest('hex'))
  }
})

test('usage records a new UTC day after midnight, though the day string is computed once per day', async () => {
  const batches: Array<readonly UsageIncrement[]> = []
  let now = Date.UTC(2026, 0, 1, 23, 59, 59, 999)
  let recorded = 0
  const recorder = createUsageRecorder({
    store: { recordUsage: async batch => { batches.push(batch); return { dropped: 0 } } },
    limits: { maxJobProjects: 10, retentionDays: 1 },
    flushIntervalMs: 60_000,
    now: () => now,
    onRecorded: n => { recorded += n }
  })
  const job = { jobProjectId: 7, jobProjectPath: 'g/app', ancestorGroupIds: [1] }
  recorder.record(5, job, ['read_packages'])
  now += 1
  recorder.record(5, job, ['read_packages'])
  recorder.record(5, job, ['read_packages'])
  now -= 2 // a clock stepped back: the earlier day again
  recorder.record(5, job, [])
  await recorder.close()
  const days = batches.flat().map(b => [b.day, b.requests])
  assert.deepEqual(days, [['2026-01-01', 2], ['2026-01-02', 2]])
  assert.equal(recorded, 4, 'the records counter gets every record at the flush')
})

test('the trusted-proxy answer kept per address is the BlockList\'s answer', () => {
  const trusted = trustedPeers(['10.0.0.0/8', '::1'])
  for (let round = 0; round < 2; round++) {
    assert.equal(trusted('10.1.2.3'), true)
    assert.equal(trusted('11.1.2.3'), false)
    assert.equal(trusted('::1'), true)
    assert.equal(trusted(undefined), false)
    assert.equal(trusted('not an address'), false)
  }
  for (let i = 0; i < 3000; i++) assert.equal(trusted(`10.0.${i >> 8}.${i & 255}`), true)
  assert.equal(trusted('192.168.0.1'), false)
})

test('a path read with its extension as the format is kept: the same frozen answer, a miss kept as a miss', () => {
  const cached = Router.compile(routes)
  const first = cached.match('DELETE', '/projects/42/packages/5.xml')
  assert.equal(first?.route.id, 'delete_projects_id_packages_package_id')
  assert.equal(cached.match('DELETE', '/projects/42/packages/5.xml'), first, 'the second lookup is the kept object')
  assert.ok(Object.isFrozen(first) && Object.isFrozen(first!.params))
  assert.deepEqual({ ...first!.params }, { id: '42', package_id: '5' })
  // The same path under another method is its own answer; a miss with a dot stays a miss.
  assert.equal(cached.match('GET', '/projects/42/packages/5.xml')?.route.id, 'get_projects_id_packages_package_id')
  assert.equal(cached.match('GET', '/projects/42/repository/archive.zip'), null)
  assert.equal(cached.match('GET', '/projects/42/repository/archive.zip'), null)
})
