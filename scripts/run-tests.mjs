#!/usr/bin/env node
// Runs every test/**/*.test.ts with node:test through tsx. Node 20's runner does not
// expand globs or look for .ts files by itself, so the list is built here.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

const roots = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['test']
const files = []
for (const root of roots) {
  if (root.endsWith('.ts')) { files.push(root); continue }
  for (const entry of readdirSync(root, { recursive: true })) {
    if (String(entry).endsWith('.test.ts')) files.push(join(root, String(entry)))
  }
}
files.sort()
if (files.length === 0) {
  console.error('run-tests: no test files found under ' + roots.join(', '))
  process.exit(1)
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], { stdio: 'inherit' })
process.exit(result.status ?? 1)
