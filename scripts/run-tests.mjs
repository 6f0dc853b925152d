#!/usr/bin/env node
// Runs test files with node:test through tsx. Node 20's runner does not expand globs or look
// for .ts files by itself, so the list is built here.
//   node scripts/run-tests.mjs [paths...]         every *.test.ts (npm test)
//   node scripts/run-tests.mjs --slow [paths...]  every *.slow.ts: the heavy cases (npm run test:slow)
//   node scripts/run-tests.mjs --clients [paths...]  every *.clients.ts: real package clients
//                                                 through the gate (npm run test:clients)
//   --groups N    run the files in N processes (--groups 1: all in one)
//   --isolated    one process per file
//   --timings     after the run, the files whose tests took longest (in-process time)
// A path ending in .ts runs that file whatever its name. Two processes run at a time (this
// machine has two cores): every test starts its own servers on free ports and asserts no latency.
//
// Why groups: a process that loads the gate through tsx spends about a second of CPU before its
// first test (tsx's loader thread, then some 500 modules), and Node 20's runner starts one per
// file: over 130 files that was more than half of the suite's time. So `*.test.ts` files run in
// DEFAULT_GROUPS processes, each importing its share of the files in turn (files are dealt out
// in path order, so one folder's files spread over the groups). Files can share a process: the
// gate keeps nothing global (each test builds its own, servers on port 0) and no test changes the
// environment; every file also passes with all of them in one process (--groups 1). The heavy
// suites keep a process per file, where start-up is little and memory is measured. If a test
// passes alone and fails in its group, `--isolated` tells whether another file is the cause.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { spawnSync } from 'node:child_process'

const DEFAULT_GROUPS = 8

const OPTIONS = new Set(['--slow', '--clients', '--isolated', '--groups', '--timings'])

const args = process.argv.slice(2)
const unknown = args.find(a => a.startsWith('--') && !OPTIONS.has(a))
if (unknown !== undefined) {
  console.error(`run-tests: unknown option ${unknown} (options: ${[...OPTIONS].join(', ')})`)
  process.exit(1)
}
const slow = args.includes('--slow')
const clients = args.includes('--clients')
const isolated = args.includes('--isolated')
const timings = args.includes('--timings')
const groupsAt = args.indexOf('--groups')
const groupsArg = groupsAt === -1 ? undefined : args[groupsAt + 1]
if (groupsAt !== -1 && !/^[1-9][0-9]*$/.test(groupsArg ?? '')) {
  console.error(`run-tests: --groups needs a positive whole number, got ${groupsArg === undefined ? 'nothing' : JSON.stringify(groupsArg)}`)
  process.exit(1)
}
if (isolated && groupsArg !== undefined) {
  console.error('run-tests: --isolated and --groups contradict each other; give one')
  process.exit(1)
}
const suffix = slow ? '.slow.ts' : clients ? '.clients.ts' : '.test.ts'
const paths = args.filter((a, i) => !a.startsWith('--') && !(groupsAt !== -1 && i === groupsAt + 1))
const roots = paths.length > 0 ? paths : ['test']
const files = []
for (const root of roots) {
  if (root.endsWith('.ts')) { files.push(root); continue }
  for (const entry of readdirSync(root, { recursive: true })) {
    if (String(entry).endsWith(suffix)) files.push(join(root, String(entry)))
  }
}
files.sort()
if (files.length === 0) {
  console.error(`run-tests: no ${suffix} files found under ${roots.join(', ')}`)
  process.exit(1)
}

const perFile = isolated || ((slow || clients) && groupsArg === undefined)
const groups = Array.from({ length: perFile ? files.length : Math.min(files.length, Number(groupsArg ?? DEFAULT_GROUPS)) }, () => [])
files.forEach((file, i) => groups[i % groups.length].push(file))

// A group of one file runs that file; a larger group runs a generated module that imports its
// files in order (.mts, so that it is an ES module wherever it is written). A file that fails to
// load becomes a failing test that names it, and the group's other files still run. node:test
// starts a test as soon as it is declared: the root `before` holds every test until all files
// have loaded, or the first file's tests would run while the others load (compiling, building
// what they need at the top), their timeouts counting time the loading took.
const dir = groups.some(g => g.length > 1) || timings ? mkdtempSync(join(tmpdir(), 'job-token-gate-tests-')) : null
const entries = groups.map((group, i) => {
  if (group.length === 1) return group[0]
  const entry = join(dir, `group-${String(i + 1).padStart(2, '0')}-of-${groups.length}.test.mts`)
  const urls = group.map(f => pathToFileURL(resolve(f)).href)
  writeFileSync(entry, [
    "import { before, test } from 'node:test'",
    'let loaded',
    'const all = new Promise(resolve => { loaded = resolve })',
    'before(() => all)',
    `for (const url of ${JSON.stringify(urls, null, 2)}) {`,
    '  try {',
    '    await import(url)',
    '  } catch (error) {',
    "    test(`${url}: the file failed to load`, () => { throw error })",
    '  }',
    '}',
    'loaded()',
    ''
  ].join('\n'))
  return entry
})
// --test-force-exit: a process whose tests (after hooks included) are all done exits even if a
// handle is left (a client reconnecting to servers its file stopped): one such process once held
// the slow suite, and CI, for good after its last test had passed.
const timingsFile = timings ? join(dir, 'timings.tsv') : undefined
const reporters = timingsFile === undefined
  ? ['--test-reporter=spec']
  : ['--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${new URL('timings-reporter.mjs', import.meta.url).href}`, '--test-reporter-destination=stderr']
try {
  const env = timingsFile === undefined ? process.env : { ...process.env, RUN_TESTS_TIMINGS: timingsFile }
  const result = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--test', '--test-concurrency=2', '--test-force-exit', ...reporters, ...entries], { stdio: 'inherit', env })
  process.exitCode = result.status ?? 1
  if (timingsFile !== undefined) printTimings(timingsFile)
} finally {
  if (dir !== null) rmSync(dir, { recursive: true, force: true })
}

/** The slowest files of the run, by the summed durations of their top-level tests. */
function printTimings (file) {
  let text = ''
  try { text = readFileSync(file, 'utf8') } catch { /* no test ended */ }
  const byFile = new Map()
  for (const line of text.split('\n')) {
    const [ms, path] = line.split('\t')
    if (path === undefined) continue
    const name = path === '' ? '(unknown file)' : relative(process.cwd(), path)
    byFile.set(name, (byFile.get(name) ?? 0) + Number(ms))
  }
  const rows = [...byFile].sort((a, b) => b[1] - a[1])
  const total = rows.reduce((sum, [, ms]) => sum + ms, 0)
  console.log(`\nrun-tests: ${rows.length} files, ${(total / 1000).toFixed(1)} s of tests (two at a time); the slowest:`)
  for (const [name, ms] of rows.slice(0, 25)) console.log(`${(ms / 1000).toFixed(1).padStart(8)} s  ${name}`)
}
