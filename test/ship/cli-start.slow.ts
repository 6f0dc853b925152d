// The CLI loads only what a subcommand needs: `--help` nothing but commander, `explain` the
// catalog and the router but not the gate. Checked on the modules actually resolved (a module
// hook records every URL), not on timings: bench/cli-start.ts measures those.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CLI = join(ROOT, 'src/cli/main.ts')

// Registered after tsx: the hook thread posts every resolved URL; the main thread prints them at exit.
const TRACE = `
import { register } from 'node:module'
import { MessageChannel } from 'node:worker_threads'
const { port1, port2 } = new MessageChannel()
const seen = new Set()
port1.on('message', url => seen.add(url))
port1.unref()
register('data:text/javascript,' + encodeURIComponent(\`
let port
export function initialize (data) { port = data.port }
export async function resolve (specifier, context, next) {
  const result = await next(specifier, context)
  port.postMessage(result.url)
  return result
}\`), { data: { port: port2 }, transferList: [port2] })
process.on('exit', () => { process.stderr.write('\\nLOADED ' + JSON.stringify([...seen]) + '\\n') })
`

function loaded (t: { after: (fn: () => void) => void }, ...args: string[]): { src: string[], packages: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-trace-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'trace.mjs'), TRACE)
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--import', join(dir, 'trace.mjs'), CLI, ...args], { encoding: 'utf8', env: { ...process.env, GATE_UPSTREAM_URL: '' } })
  const line = run.stderr.split('\n').find(l => l.startsWith('LOADED '))
  assert.ok(line !== undefined, run.stderr)
  const urls = (JSON.parse(line.slice('LOADED '.length)) as string[]).filter(u => u.startsWith('file:')).map(u => fileURLToPath(u))
  const src = urls.filter(p => p.startsWith(join(ROOT, 'src'))).map(p => p.slice(ROOT.length))
  const packages = [...new Set(urls.filter(p => p.includes('/node_modules/')).map(p => {
    const rest = p.slice(p.lastIndexOf('/node_modules/') + '/node_modules/'.length).split('/')
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
  }))]
  return { src, packages }
}

test('--help loads commander and nothing of the gate', (t) => {
  const { src, packages } = loaded(t, '--help')
  assert.deepEqual(src, ['src/cli/main.ts'])
  assert.deepEqual(packages.filter(p => p !== 'tsx' && p !== 'get-tsconfig' && p !== 'resolve-pkg-maps'), ['commander'])
})

test('explain loads the catalog and the router, not the gate, its logger or its clients', (t) => {
  const { src, packages } = loaded(t, 'explain', 'GET', '/api/v4/projects/1/packages')
  for (const needed of ['src/catalog/load.ts', 'src/routing/router.ts', 'src/routing/explain.ts']) assert.ok(src.includes(needed), needed)
  for (const file of src) assert.doesNotMatch(file, /^src\/(main\.ts|gate\/|grants\/|identity\/|proxy\/|admin\/)/, `explain loads ${file}`)
  for (const pkg of ['pino', 'undici', 'ioredis', 'prom-client', 'graphql', 'jose']) assert.ok(!packages.includes(pkg), `explain loads ${pkg}`)
})

test('serve --help loads the settings table, not the gate', (t) => {
  const { src } = loaded(t, 'serve', '--help')
  assert.ok(src.includes('src/config.ts'))
  for (const file of src) assert.doesNotMatch(file, /^src\/(main\.ts|gate\/)/, `serve --help loads ${file}`)
})
