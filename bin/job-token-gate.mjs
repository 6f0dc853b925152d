#!/usr/bin/env node
// The CLI runs the TypeScript sources through tsx, so there is no build step to forget.
import { register } from 'tsx/esm/api'
register()
const { runCli } = await import('../src/cli/main.ts')
process.exitCode = await runCli(process.argv.slice(2))
