// The npm package as users get it: `npm pack` holds the compiled gate and what it reads at run
// time, nothing else, and the tarball installed into an empty directory runs `job-token-gate`
// without TypeScript, tsx or any dev dependency.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const NPM_QUIET = ['--no-audit', '--no-fund', '--loglevel=error']

/** Runs a command; a failure shows what it printed. */
function run (command: string, args: readonly string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8' })
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`)
  return result.stdout
}

test('npm pack holds dist/, catalog/, bin/, README and LICENSE; installed from the tarball, job-token-gate explain runs', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-pack-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))

  // The build the package ships (prepack would run it too; run here so its output stays out of
  // npm pack's JSON).
  run('npm', ['run', '--silent', 'build'], ROOT)
  const [packed] = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir, ...NPM_QUIET], ROOT)) as Array<{ filename: string, files: Array<{ path: string }> }>
  assert.ok(packed !== undefined)
  const paths = packed.files.map(f => f.path)
  const tops = new Set(paths.map(p => p.split('/')[0]))
  assert.deepEqual([...tops].sort(), ['LICENSE', 'README.md', 'bin', 'catalog', 'dist', 'package.json'])
  for (const needed of ['bin/job-token-gate.mjs', 'dist/cli/main.js', 'dist/main.js', 'catalog/routes.json', 'catalog/policies.json', 'catalog/routes.schema.json', 'catalog/policies.schema.json']) {
    assert.ok(paths.includes(needed), `${needed} is in the package`)
  }
  assert.equal(paths.filter(p => p.endsWith('.ts')).length, 0, 'no TypeScript in the package')

  // An empty project installs the tarball: production dependencies only, from the registry
  // (or npm's cache when it has them).
  const app = join(dir, 'app')
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
  run('npm', ['install', '--prefer-offline', '--omit=dev', ...NPM_QUIET, join(dir, packed.filename)], app)
  for (const devOnly of ['tsx', 'typescript', 'esbuild']) {
    assert.equal(existsSync(join(app, 'node_modules', devOnly)), false, `${devOnly} is not installed with the package`)
  }

  const bin = join(app, 'node_modules', '.bin', 'job-token-gate')
  const out = execFileSync(bin, ['explain', 'GET', '/api/v4/projects/1/packages'], { cwd: app, encoding: 'utf8' })
  assert.match(out, /^route +get_projects_id_packages$/m)
  assert.match(out, /^policies +read_packages$/m)
  const help = execFileSync(bin, ['--help'], { cwd: app, encoding: 'utf8' })
  assert.match(help, /explain/)
  assert.match(help, /serve/)
})

test('without dist/, the bin names npm run build and exits 2 (no TypeScript fallback)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-nodist-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true })
  const result = spawnSync(process.execPath, [join(dir, 'bin', 'job-token-gate.mjs'), '--help'], { encoding: 'utf8' })
  assert.equal(result.status, 2)
  assert.match(result.stderr, /dist\/ is missing: run `npm run build`/)
  assert.equal(result.stdout, '')
})
