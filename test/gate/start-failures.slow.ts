// What `serve` says when its store cannot be had at start, and when the memory store it starts
// with keeps allowlists in this process only. A Redis that cannot be reached, or a state file
// that does not parse, printed a stack trace of a dozen lines; a state file in a directory that
// does not exist started the gate, whose every change then failed to save; the memory store
// started without a word beyond `store: memory`, one per replica where several run. A setting
// refused once the store was connected (GATE_SHADOW_RESOURCES naming no resource) left the Redis
// connection open: the process printed its line and never ended.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REFUSED_PORT } from '../helpers/ports.ts'
import { startRedis } from '../helpers/redis.ts'
import { serveOutcome, type ServeOutcome } from '../helpers/serve.ts'

const UPSTREAM = { GATE_UPSTREAM_URL: 'http://127.0.0.1:1' }

function refused (outcome: ServeOutcome): { code: number | null, stderr: string } {
  assert.equal(outcome.kind, 'refused', 'serve started')
  return outcome as { code: number | null, stderr: string }
}

function oneLine (stderr: string): void {
  assert.equal(stderr.trimEnd().split('\n').length, 1, `one line, no stack trace:\n${stderr}`)
  assert.doesNotMatch(stderr, /^\s+at /m)
}

describe('serve: a store it cannot have at start', { concurrency: true }, () => {
  test('a Redis nobody answers at: one line naming it, exit 1', async t => {
    const { code, stderr } = refused(await serveOutcome(t, { ...UPSTREAM, GATE_REDIS_URL: `redis://:s3cret@127.0.0.1:${REFUSED_PORT}/0` }))
    assert.equal(code, 1)
    assert.match(stderr, /^job-token-gate: cannot start: grants store unavailable: cannot reach Redis \(standalone\): .*ECONNREFUSED/)
    oneLine(stderr)
    assert.doesNotMatch(stderr, /s3cret/)
  })

  test('a state file that does not parse: one line naming the file, exit 1', async t => {
    const dir = mkdtempSync(join(tmpdir(), 'gate-start-'))
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    const file = join(dir, 'grants.json')
    writeFileSync(file, '{"format": ')
    const { code, stderr } = refused(await serveOutcome(t, { ...UPSTREAM, GATE_STATE_FILE: file }))
    assert.equal(code, 1)
    assert.match(stderr, new RegExp(`^job-token-gate: cannot start: ${file.replace(/[.\\/]/g, '\\$&')} is not valid JSON`))
    oneLine(stderr)
  })

  test('a setting refused once the store is connected (GATE_SHADOW_RESOURCES) ends the process: nothing keeps it alive', async t => {
    const redis = await startRedis(t)
    const { code, stderr } = refused(await serveOutcome(t, { ...UPSTREAM, GATE_REDIS_URL: `${redis.url}/0`, GATE_SHADOW_RESOURCES: 'package' }))
    assert.equal(code, 2)
    assert.match(stderr, /^job-token-gate: GATE_SHADOW_RESOURCES names no catalog resource: package/)
    oneLine(stderr)
  })

  test('a state file in a directory that does not exist stops the start, exit 2', async t => {
    const { code, stderr } = refused(await serveOutcome(t, { ...UPSTREAM, GATE_STATE_FILE: '/nonexistent-gate-dir/grants.json' }))
    assert.equal(code, 2)
    assert.match(stderr, /^job-token-gate: GATE_STATE_FILE: the directory \/nonexistent-gate-dir does not exist/)
    oneLine(stderr)
  })
})

describe('serve: the memory store says what it keeps', { concurrency: true }, () => {
  test('without GATE_STATE_FILE: a warning that allowlists live in this process only', async t => {
    const outcome = await serveOutcome(t, UPSTREAM)
    assert.equal(outcome.kind, 'ready', (outcome as { stderr?: string }).stderr)
    const warning = (outcome as { lines: Array<Record<string, unknown>> }).lines.find(l => l.level === 40 && l.store === 'memory')
    assert.ok(warning, 'a warning about the memory store')
    assert.match(String(warning.msg), /kept in this process only.*not shared with other replicas/)
  })

  test('a GATE_STATE_FILE that does not exist yet: a warning naming it; one that exists: none', async t => {
    const dir = mkdtempSync(join(tmpdir(), 'gate-start-'))
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    const missing = join(dir, 'grants.json')
    const first = await serveOutcome(t, { ...UPSTREAM, GATE_STATE_FILE: missing })
    assert.equal(first.kind, 'ready', (first as { stderr?: string }).stderr)
    const warning = (first as { lines: Array<Record<string, unknown>> }).lines.find(l => l.level === 40 && l.state_file === missing)
    assert.ok(warning, 'a warning naming the state file')
    assert.match(String(warning.msg), /does not exist yet: starting with no allowlists/)

    const present = join(dir, 'present.json')
    writeFileSync(present, JSON.stringify({ format: 'job-token-gate/grants', formatVersion: 1, projects: [] }))
    const second = await serveOutcome(t, { ...UPSTREAM, GATE_STATE_FILE: present })
    assert.equal(second.kind, 'ready', (second as { stderr?: string }).stderr)
    assert.deepEqual((second as { lines: Array<Record<string, unknown>> }).lines.filter(l => l.level === 40 && l.store === 'memory'), [])
  })
})

describe('serve: a Redis store without a marker is said to be new or emptied', () => {
  test('the first start on it warns, naming the marker it wrote; a later one does not', async t => {
    const redis = await startRedis(t)
    const first = await serveOutcome(t, { ...UPSTREAM, GATE_REDIS_URL: redis.url })
    assert.equal(first.kind, 'ready', (first as { stderr?: string }).stderr)
    const warning = (first as { lines: Array<Record<string, unknown>> }).lines.find(l => l.level === 40 && l.store === 'redis')
    assert.ok(warning, 'a warning about the Redis store')
    assert.equal(warning.marker, redis.cli('get', 'jtg:store').trim())
    assert.match(String(warning.msg), /held no marker: it is new, or lost everything it held/)
    const second = await serveOutcome(t, { ...UPSTREAM, GATE_REDIS_URL: redis.url })
    assert.equal(second.kind, 'ready', (second as { stderr?: string }).stderr)
    assert.deepEqual((second as { lines: Array<Record<string, unknown>> }).lines.filter(l => l.store === 'redis' && (l.level as number) >= 40), [])
  })

  test('with GATE_REDIS_STORE_ID a start on it marks nothing and logs an error saying how to accept it', async t => {
    const redis = await startRedis(t)
    const start = await serveOutcome(t, { ...UPSTREAM, GATE_REDIS_URL: redis.url, GATE_REDIS_STORE_ID: 'store-1' })
    // It serves (self access and requests without a job token need no store); readiness refuses.
    assert.equal(start.kind, 'ready', (start as { stderr?: string }).stderr)
    const lines = (start as { lines: Array<Record<string, unknown>> }).lines.filter(l => l.store === 'redis' && (l.level as number) >= 40)
    assert.equal(lines.length, 1, JSON.stringify(lines))
    assert.equal(lines[0]!.level, 50)
    assert.equal(lines[0]!.marker, 'store-1')
    assert.match(String(lines[0]!.msg), /holds no marker of GATE_REDIS_STORE_ID: it lost everything it held, or is new.*accept-store-loss/)
    assert.equal(redis.cli('exists', 'jtg:store').trim(), '0')
  })
})
