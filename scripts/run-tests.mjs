#!/usr/bin/env node
// Runs test files with node:test through tsx. Node 20's runner does not expand globs or look
// for .ts files by itself, so the list is built here.
//   node scripts/run-tests.mjs [paths...]         every *.test.ts (npm test)
//   node scripts/run-tests.mjs --slow [paths...]  every *.slow.ts: the heavy cases (npm run test:slow)
//   node scripts/run-tests.mjs --clients [paths...]  every *.clients.ts: real package clients
//                                                 through the gate (npm run test:clients)
// A path ending in .ts runs that file whatever its name. Two files run at a time (this machine
// has two cores): every test starts its own servers on free ports and asserts no latency.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

const args = process.argv.slice(2)
const slow = args.includes('--slow')
const clients = args.includes('--clients')
const suffix = slow ? '.slow.ts' : clients ? '.clients.ts' : '.test.ts'
const paths = args.filter(a => a !== '--slow' && a !== '--clients')
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
const result = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files], { stdio: 'inherit' })
process.exit(result.status ?? 1)
