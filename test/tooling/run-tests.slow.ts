// scripts/run-tests.mjs, the runner of every suite: files run in groups that share a process,
// and nothing a group holds may be lost. A file that fails to load is a named failure and its
// group's other files still run; a failing test fails the run; every file's tests are counted.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'

const RUNNER = fileURLToPath(new URL('../../scripts/run-tests.mjs', import.meta.url))

/** A folder (an ES module package) of these test files, removed with the test. */
function folder (t: TestContext, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'run-tests-fixture-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}')
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), "import { test } from 'node:test'\n" + text)
  return dir
}

/** a passes, b declares a test then throws on load, c fails, d passes. */
const MIXED = {
  'a.test.ts': "test('a passes', () => {})\n",
  'b.test.ts': "test('b registered', () => {})\nthrow new Error('b cannot load')\n",
  'c.test.ts': "import assert from 'node:assert/strict'\ntest('c fails', () => { assert.equal(1, 2) })\n",
  'd.test.ts': "test('d passes', () => {})\n"
}

/** The environment of a run of its own: node:test marks its children, which then run no files. */
const { NODE_TEST_CONTEXT: _, ...ENV } = process.env

function run (args: string[], env: NodeJS.ProcessEnv = ENV): { status: number | null, out: string, count: (name: string) => number } {
  const r = spawnSync(process.execPath, [RUNNER, ...args], { encoding: 'utf8', env, timeout: 60_000 })
  const out = r.stdout + r.stderr
  return { status: r.status, out, count: name => Number(new RegExp(`^ℹ ${name} (\\d+)$`, 'm').exec(out)?.[1] ?? NaN) }
}

test('in groups (one and two), a file that cannot load is a named failure and the rest of its group runs', t => {
  const dir = folder(t, MIXED)
  for (const groups of ['1', '2']) {
    const r = run(['--groups', groups, dir])
    assert.equal(r.status, 1, r.out)
    assert.match(r.out, /✖ file:\/\/\S+\/b\.test\.ts: the file failed to load/)
    assert.match(r.out, /Error: b cannot load/)
    assert.match(r.out, /✖ c fails/)
    assert.match(r.out, /✔ a passes/)
    assert.match(r.out, /✔ d passes/)
    assert.equal(r.count('pass'), 3, r.out)
    assert.equal(r.count('fail'), 2, r.out)
  }
})

test('in a group, no test starts before every file of the group has loaded', t => {
  // e is imported first; f, imported after it, takes 200 ms to load and says when it has.
  const dir = folder(t, {
    'e.test.ts': "import assert from 'node:assert/strict'\ntest('e runs after f loaded', () => { assert.equal((globalThis as { fLoaded?: boolean }).fLoaded, true) })\n",
    'f.test.ts': "const end = Date.now() + 200\nwhile (Date.now() < end) {}\n(globalThis as { fLoaded?: boolean }).fLoaded = true\ntest('f', () => {})\n"
  })
  const r = run(['--groups', '1', dir])
  assert.equal(r.status, 0, r.out)
  assert.equal(r.count('pass'), 2, r.out)
})

test('--isolated runs a process per file: the file that cannot load fails, the others run', t => {
  const dir = folder(t, MIXED)
  const r = run(['--isolated', dir])
  assert.equal(r.status, 1, r.out)
  assert.match(r.out, /b cannot load/)
  assert.match(r.out, /✖ c fails/)
  assert.match(r.out, /✔ d passes/)
  assert.equal(r.count('fail'), 2, r.out)
})

test('passing files pass, and the generated group modules are removed afterwards', t => {
  const dir = folder(t, MIXED)
  // The runner writes its group modules under TMPDIR: a private one shows what is left behind.
  const tmp = join(dir, 'tmp')
  mkdirSync(tmp)
  const r = run(['--groups', '1', join(dir, 'a.test.ts'), join(dir, 'd.test.ts')], { ...ENV, TMPDIR: tmp })
  assert.equal(r.status, 0, r.out)
  assert.equal(r.count('pass'), 2, r.out)
  assert.deepEqual(readdirSync(tmp).filter(name => name.startsWith('job-token-gate-tests-')), [])
})

test('--timings names the files whose tests took longest, in groups and alone, and leaves nothing behind', t => {
  const dir = folder(t, {
    'slow.test.ts': "import { setTimeout as sleep } from 'node:timers/promises'\ntest('slow', async () => { await sleep(400) })\ntest('also slow', async () => { await sleep(400) })\n",
    'quick.test.ts': "test('quick', () => {})\n"
  })
  const tmp = join(dir, 'tmp')
  mkdirSync(tmp)
  for (const how of [['--groups', '1'], ['--isolated']]) {
    const r = run(['--timings', ...how, dir], { ...ENV, TMPDIR: tmp })
    assert.equal(r.status, 0, r.out)
    const rows = [...r.out.matchAll(/^ +(\d+\.\d) s {2}(\S+)$/gm)].map(m => [Number(m[1]), m[2]!.split('/').at(-1)] as const)
    assert.deepEqual(rows.map(([, name]) => name), ['slow.test.ts', 'quick.test.ts'], r.out)
    assert.ok(rows[0]![0] >= 0.8, `both of slow's tests counted: ${r.out}`)
    assert.match(r.out, /run-tests: 2 files, \d+\.\d s of tests/)
    assert.deepEqual(readdirSync(tmp).filter(name => name.startsWith('job-token-gate-tests-')), [])
  }
})

test('bad options are refused, naming the problem', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--groups', 'x'], /--groups needs a positive whole number, got "x"/],
    [['--groups', '0'], /--groups needs a positive whole number, got "0"/],
    [['--groups'], /--groups needs a positive whole number, got nothing/],
    [['--isolated', '--groups', '2'], /--isolated and --groups contradict each other/],
    // A misspelt option must not run some other set of tests.
    [['--slwo'], /unknown option --slwo \(options: --slow, --clients, --isolated, --groups, --timings\)/]
  ]
  for (const [args, message] of cases) {
    const r = run(args)
    assert.equal(r.status, 1, r.out)
    assert.match(r.out, message)
  }
})
