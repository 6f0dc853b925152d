// scripts/run-tests.mjs, the runner of every suite: files run in groups that share a process,
// and nothing a group holds may be lost. A file that fails to load is a named failure and its
// group's other files still run; a failing test fails the run; every file's tests are counted.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'

const RUNNER = fileURLToPath(new URL('../../scripts/run-tests.mjs', import.meta.url))

/** A folder of test files: a passes, b registers a test then throws on load, c fails, d passes. */
function fixture (): string {
  const dir = mkdtempSync(join(tmpdir(), 'run-tests-fixture-'))
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}')
  writeFileSync(join(dir, 'a.test.ts'), "import { test } from 'node:test'\ntest('a passes', () => {})\n")
  writeFileSync(join(dir, 'b.test.ts'), "import { test } from 'node:test'\ntest('b registered', () => {})\nthrow new Error('b cannot load')\n")
  writeFileSync(join(dir, 'c.test.ts'), "import { test } from 'node:test'\nimport assert from 'node:assert/strict'\ntest('c fails', () => { assert.equal(1, 2) })\n")
  writeFileSync(join(dir, 'd.test.ts'), "import { test } from 'node:test'\ntest('d passes', () => {})\n")
  return dir
}

/** The environment of a run of its own: node:test marks its children, which then run no files. */
const { NODE_TEST_CONTEXT: _, ...ENV } = process.env

function run (args: string[], env: NodeJS.ProcessEnv = ENV): { status: number | null, out: string, count: (name: string) => number } {
  const r = spawnSync(process.execPath, [RUNNER, ...args], { encoding: 'utf8', env, timeout: 60_000 })
  const out = r.stdout + r.stderr
  return { status: r.status, out, count: name => Number(new RegExp(`^ℹ ${name} (\\d+)$`, 'm').exec(out)?.[1] ?? NaN) }
}

test('in groups (one and two), a file that cannot load is a named failure and the rest of its group runs', t => {
  const dir = fixture()
  t.after(() => rmSync(dir, { recursive: true, force: true }))
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
  const dir = mkdtempSync(join(tmpdir(), 'run-tests-fixture-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}')
  // e is imported first; f, imported after it, takes 200 ms to load and says when it has.
  writeFileSync(join(dir, 'e.test.ts'), "import { test } from 'node:test'\nimport assert from 'node:assert/strict'\ntest('e runs after f loaded', () => { assert.equal((globalThis as { fLoaded?: boolean }).fLoaded, true) })\n")
  writeFileSync(join(dir, 'f.test.ts'), "import { test } from 'node:test'\nconst end = Date.now() + 200\nwhile (Date.now() < end) {}\n(globalThis as { fLoaded?: boolean }).fLoaded = true\ntest('f', () => {})\n")
  const r = run(['--groups', '1', dir])
  assert.equal(r.status, 0, r.out)
  assert.equal(r.count('pass'), 2, r.out)
})

test('--isolated runs a process per file: the file that cannot load fails, the others run', t => {
  const dir = fixture()
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const r = run(['--isolated', dir])
  assert.equal(r.status, 1, r.out)
  assert.match(r.out, /b cannot load/)
  assert.match(r.out, /✖ c fails/)
  assert.match(r.out, /✔ d passes/)
  assert.equal(r.count('fail'), 2, r.out)
})

test('passing files pass, and the generated group modules are removed afterwards', t => {
  const dir = fixture()
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  // The runner writes its group modules under TMPDIR: a private one shows what is left behind.
  const tmp = join(dir, 'tmp')
  mkdirSync(tmp)
  const r = run(['--groups', '1', join(dir, 'a.test.ts'), join(dir, 'd.test.ts')], { ...ENV, TMPDIR: tmp })
  assert.equal(r.status, 0, r.out)
  assert.equal(r.count('pass'), 2, r.out)
  assert.deepEqual(readdirSync(tmp).filter(name => name.startsWith('job-token-gate-tests-')), [])
})

test('bad options are refused, naming the problem', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--groups', 'x'], /--groups needs a positive whole number, got "x"/],
    [['--groups', '0'], /--groups needs a positive whole number, got "0"/],
    [['--groups'], /--groups needs a positive whole number, got nothing/],
    [['--isolated', '--groups', '2'], /--isolated and --groups contradict each other/]
  ]
  for (const [args, message] of cases) {
    const r = run(args)
    assert.equal(r.status, 1, r.out)
    assert.match(r.out, message)
  }
})
