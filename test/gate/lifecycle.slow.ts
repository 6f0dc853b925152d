// The `serve` process: start-up checks, SIGHUP reload, SIGTERM drain.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_CATALOG_DIR } from '../../src/catalog/load.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { eventually } from '../helpers/eventually.ts'
import { send } from '../helpers/http.ts'
import { CLI_FROM_SOURCES, startServe } from '../helpers/serve.ts'

test('serve refuses to start without an upstream, naming the variable', () => {
  const env = { ...process.env }
  for (const key of Object.keys(env)) if (key.startsWith('GATE_')) delete env[key]
  const run = spawnSync(process.execPath, [...CLI_FROM_SOURCES, 'serve'], { env, encoding: 'utf8', timeout: 60_000 })
  assert.equal(run.status, 2)
  assert.match(run.stderr, /GATE_UPSTREAM_URL is required/)
  const bad = spawnSync(process.execPath, [...CLI_FROM_SOURCES, 'serve'], { env: { ...env, GATE_UPSTREAM_URL: 'http://127.0.0.1:9', GATE_SERVICE_TOKEN: 'x', GATE_MODE: 'loud' }, encoding: 'utf8', timeout: 60_000 })
  assert.equal(bad.status, 2)
  assert.match(bad.stderr, /GATE_MODE must be one of enforce, shadow/)
})

test('SIGHUP reloads the catalog (keeping the last good one), SIGTERM drains then exits 0', async (t) => {
  // The upstream answers the forwarded requests when the test releases them.
  const held: Array<() => void> = []
  const gitlab = await startFakeGitlab({
    fallback: (req, res) => {
      req.resume()
      const answer = (): void => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"slow":true}') }
      if (req.url === '/api/v4/projects/1/packages') held.push(answer)
      else answer()
    }
  })
  t.after(() => gitlab.close())
  const dir = mkdtempSync(join(tmpdir(), 'catalog-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const file of ['routes.json', 'policies.json', 'routes.schema.json', 'policies.schema.json']) cpSync(join(DEFAULT_CATALOG_DIR, file), join(dir, file))
  const gate = await startServe(t, { GATE_UPSTREAM_URL: gitlab.url, GATE_SERVICE_TOKEN: gitlab.serviceToken, GATE_CATALOG_DIR: dir, GATE_DRAIN_TIMEOUT_MS: '5000' })
  const base = gate.api

  writeFileSync(join(dir, 'routes.json'), 'not json')
  gate.child.kill('SIGHUP')
  const failed = await gate.waitForLine('catalog reload failed; keeping the last good catalog')
  assert.match(String(failed.error), /routes\.json is not valid JSON/)
  const serving = send(base, 'GET', '/api/v4/projects/1/packages', { 'private-token': 'glpat-x' })
  await eventually(() => held.length === 1, { message: 'the request to reach the upstream' })
  held.shift()!()
  assert.equal((await serving).status, 200, 'still serving')

  const exited = new Promise<number | null>(resolve => gate.child.once('exit', code => resolve(code)))
  const inFlight = send(base, 'GET', '/api/v4/projects/1/packages', { 'private-token': 'glpat-x' })
  await eventually(() => held.length === 1, { message: 'the request to reach the upstream' })
  gate.child.kill('SIGTERM')
  await gate.waitForLine('SIGTERM: draining')
  held.shift()!()
  const res = await inFlight
  assert.equal(res.status, 200, 'the in-flight request finished during the drain')
  assert.equal(res.text, '{"slow":true}')
  assert.equal(await exited, 0)
  assert.ok(gate.lines.some(l => l.msg === 'SIGTERM: draining'))
})
