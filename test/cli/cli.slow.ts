import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from '../../src/cli/main.ts'
import { DEFAULT_CATALOG_DIR } from '../../src/catalog/load.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { send } from '../helpers/http.ts'
import { startServe } from '../helpers/serve.ts'

async function cli (...argv: string[]): Promise<{ code: number, out: string, err: string }> {
  let out = ''
  let err = ''
  const code = await runCli(argv, { out: t => { out += t }, err: t => { err += t } })
  return { code, out, err }
}

test('explain prints canonical path, route, parameters, policies and the accessed project', async () => {
  const { code, out } = await cli('explain', 'GET', '/api/v4/projects/my-group%2Fapp/packages/npm/@acme%2fcli/-/@acme/cli-1.0.0.tgz')
  assert.equal(code, 0)
  assert.match(out, /^canonical path +\/api\/v4\/projects\/my-group%2Fapp\/packages\/npm\/@acme%2fcli\/-\/@acme\/cli-1\.0\.0\.tgz$/m)
  assert.match(out, /^route +get_projects_id_packages_npm_package_name_file_name$/m)
  assert.match(out, /^pattern +GET \/projects\/:id\/packages\/npm\/\*package_name\/-\/\*file_name$/m)
  assert.match(out, /^params +id="my-group\/app" package_name="@acme\/cli" file_name="@acme\/cli-1\.0\.0\.tgz"$/m)
  assert.match(out, /^policies +read_packages$/m)
  assert.match(out, /^accessed project +project "my-group\/app"/m)
})

test('explain --json', async () => {
  const { code, out } = await cli('explain', '--json', 'HEAD', '/api/v4/projects/0042/deployments.json')
  assert.equal(code, 0)
  const json = JSON.parse(out)
  assert.equal(json.result, 'matched')
  assert.equal(json.method, 'GET')
  assert.equal(json.routeId, 'get_projects_id_deployments')
  assert.equal(json.format, true)
  assert.deepEqual(json.policies, ['read_deployments'])
  assert.deepEqual(json.accessedProject, { kind: 'project_id', id: 42 })
})

test('explain says why a path is rejected, not an API path, or has no route', async () => {
  const rejected = await cli('explain', 'GET', '/api/v4/projects/1/%2e%2e/secrets')
  assert.equal(rejected.code, 1)
  assert.match(rejected.out, /^rejected \(PATH_DOT_SEGMENT\): /)
  const other = await cli('explain', 'GET', '/group/project.git/info/refs')
  assert.equal(other.code, 1)
  assert.match(other.out, /not an API path/)
  const none = await cli('explain', '--json', 'GET', '/api/v4/projects/1/variables')
  assert.equal(none.code, 1)
  assert.equal(JSON.parse(none.out).result, 'no_route')
  const root = await cli('explain', '--relative-url-root', '/gitlab', 'GET', '/gitlab/api/v4/job')
  assert.equal(root.code, 0)
  assert.match(root.out, /^route +get_job$/m)
})

test('catalog import writes what is committed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'import-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const output = join(dir, 'routes.json')
  const pages = ['fine-grained-permissions.en.md', 'fine-grained-permissions.ja.md', 'gitlab-source-routes.json'].map(name => join(DEFAULT_CATALOG_DIR, 'sources', name))
  const { code } = await cli('catalog', 'import', '-o', output, ...pages)
  assert.equal(code, 0)
  assert.equal(readFileSync(output, 'utf8'), readFileSync(join(DEFAULT_CATALOG_DIR, 'routes.json'), 'utf8'))
  const missing = await cli('catalog', 'import', join(dir, 'nope.md'))
  assert.equal(missing.code, 2)
  assert.match(missing.err, /ENOENT/)
})

test('a broken catalog directory stops the command with a message naming the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'catalog-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const { code, err } = await cli('--catalog', dir, 'catalog', 'lint')
  assert.equal(code, 2)
  assert.match(err, /cannot read .*routes\.json/)
})

test('serve --catalog loads that directory, over GATE_CATALOG_DIR; without it GATE_CATALOG_DIR holds', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'catalog-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  // The CLI from its sources (tsx), not bin/ (which runs dist/): a stale or missing build cannot change what this tests.
  const bin = ['--import', 'tsx', join(DEFAULT_CATALOG_DIR, '..', 'src', 'cli', 'main.ts')]
  // An empty directory stops the start before anything listens; had the flag been ignored, the
  // gate would start on the shipped catalog and only the timeout would end it.
  const env = { ...process.env, GATE_UPSTREAM_URL: 'http://127.0.0.1:9', GATE_SERVICE_TOKEN: 'x', GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0', GATE_CATALOG_DIR: DEFAULT_CATALOG_DIR }
  const flag = spawnSync(process.execPath, [...bin, '--catalog', dir, 'serve'], { env, encoding: 'utf8', timeout: 60_000 })
  assert.equal(flag.status, 2, flag.stderr)
  assert.ok(flag.stderr.includes(join(dir, 'routes.json')), flag.stderr)
  const fromEnv = spawnSync(process.execPath, [...bin, 'serve'], { env: { ...env, GATE_CATALOG_DIR: dir }, encoding: 'utf8', timeout: 60_000 })
  assert.equal(fromEnv.status, 2, fromEnv.stderr)
  assert.ok(fromEnv.stderr.includes(join(dir, 'routes.json')), fromEnv.stderr)
})

test('the CLI run from its sources lists the subcommands in --help and names a missing argument', () => {
  // The CLI from its sources (tsx), not bin/ (which runs dist/): a stale or missing build cannot change what this tests.
  const bin = ['--import', 'tsx', join(DEFAULT_CATALOG_DIR, '..', 'src', 'cli', 'main.ts')]
  const out = execFileSync(process.execPath, [...bin, '--help'], { encoding: 'utf8' })
  assert.match(out, /explain/)
  assert.match(out, /catalog/)
  const bad = spawnSync(process.execPath, [...bin, 'explain', 'GET'], { encoding: 'utf8' })
  assert.equal(bad.status, 1)
  assert.match(bad.stderr, /missing required argument 'path'/)
})

test('serve names every listener it bound in its ready line, the forward-auth one too', async (t) => {
  const gitlab = await startFakeGitlab()
  t.after(() => gitlab.close())
  const gate = await startServe(t, { GATE_UPSTREAM_URL: gitlab.url, GATE_SERVICE_TOKEN: gitlab.serviceToken, GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const ready = await gate.waitForLine('job-token-gate ready')
  const auth = String(ready.auth)
  assert.match(auth, /^127\.0\.0\.1:[1-9]\d*$/)
  assert.notEqual(auth, String(ready.listen))
  // The forward-auth listener decides a request that names no job token and is not an API path: allowed, with no body.
  const res = await send(`http://${auth}`, 'GET', '/')
  assert.equal(res.status, 200)
  assert.equal(res.text, '')
  assert.equal((await send(gate.health, 'GET', '/-/readiness')).status, 200)
})
