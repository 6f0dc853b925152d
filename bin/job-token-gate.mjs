#!/usr/bin/env node
// The installed `job-token-gate` command: runs the compiled JavaScript in dist/. Production runs
// no TypeScript loader, so start-up costs only what a subcommand imports. In a clone, build
// first (`npm run build`), or run the sources: `node --import tsx src/cli/main.ts <command>`.
import { existsSync } from 'node:fs'

const entry = new URL('../dist/cli/main.js', import.meta.url)
if (!existsSync(entry)) {
  process.stderr.write('job-token-gate: dist/ is missing: run `npm run build` first (or, in a clone, `node --import tsx src/cli/main.ts`)\n')
  process.exit(2)
}
const { runCli } = await import(entry.href)
process.exitCode = await runCli(process.argv.slice(2))
