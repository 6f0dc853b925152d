// The shipped nginx configuration (deploy/nginx/job-token-gate.conf) asked the gate only in
// `location /api/v4/`. nginx chooses a location by the normalized path (dot segments resolved,
// escapes decoded) and proxies the path as sent, which GitLab reads without resolving dot
// segments: `/api/v4/projects/300/packages/maven/a/../../../../../../../x.jar` is `/x.jar` to
// nginx, so it went to `location /` and reached GitLab, job token and all, without a decision,
// while Grape routes it to project 300's Maven route (path `a/../../../../../..`). And a job token
// outside /api/v4 (git over HTTP, /jwt/auth) reached GitLab whatever GATE_NON_API_JOB_TOKENS said.
// Now every location that proxies to GitLab asks the gate.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { freePort } from '../helpers/redis.ts'
import { eventually } from '../helpers/eventually.ts'

const nginx = ['/usr/sbin/nginx', '/usr/bin/nginx'].find(candidate => spawnSync(candidate, ['-v']).status === 0) ?? null

/** The request target sent exactly as written (send() would too, but this keeps the raw line visible). */
function get (port: number, target: string, headers: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let out = ''
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => { out += d })
    socket.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0)))
    socket.on('error', reject)
    socket.write(`GET ${target} HTTP/1.1\r\nHost: gitlab.example\r\n${headers}Connection: close\r\n\r\n`)
  })
}

test('every location of the shipped nginx configuration that reaches GitLab is decided by the gate', { skip: nginx === null && process.env.CI !== 'true' ? 'nginx is not installed (.ci/run installs nginx-light)' : false }, async (t) => {
  assert.ok(nginx !== null, 'nginx must be installed in CI')
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_NON_API_JOB_TOKENS: 'deny' })
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'nginx-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'logs'))
  const shipped = readFileSync(fileURLToPath(new URL('../../deploy/nginx/job-token-gate.conf', import.meta.url)), 'utf8')
  const site = shipped
    .replace('server gitlab-webservice:8181;', `server ${new URL(g.gitlab.url).host};`)
    .replace('server 127.0.0.1:8183;', `server 127.0.0.1:${g.gate.authAddress()!.port};`)
    .replace('server 127.0.0.1:8190;', `server 127.0.0.1:${g.gate.address().port};`)
    .replace('listen 8080;', `listen 127.0.0.1:${port};`)
  writeFileSync(join(dir, 'site.conf'), site)
  writeFileSync(join(dir, 'nginx.conf'), [
    'worker_processes 1;', `pid ${join(dir, 'nginx.pid')};`, `error_log ${join(dir, 'logs', 'error.log')} warn;`,
    'events { worker_connections 64; }', 'http {',
    `  access_log off; client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;`,
    `  include ${join(dir, 'site.conf')};`, '}', ''
  ].join('\n'))
  const child = spawn(nginx!, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  t.after(() => { child.kill('SIGTERM') })
  const base = `http://127.0.0.1:${port}`
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`)
    return await send(base, 'GET', '/')
  }, { message: 'nginx answering' })

  const job = `Job-Token: ${TOKENS.app}\r\n`
  // Project 300 lists nobody: the job of project 100 may not read its packages.
  assert.equal(await get(port, '/api/v4/projects/300/packages', job), 403)
  for (const target of [
    '/api/v4/projects/300/packages/maven/a/../../../../../../../x.jar',
    '/api/v4/projects/300/packages/maven/a/%2e%2e/%2E%2E/../../../../../x.jar',
    'http://gitlab.example/api/v4/projects/300/packages/maven/a/../../../../../../../x.jar'
  ]) {
    const status = await get(port, target, job)
    assert.ok(status >= 400, `${target}: ${status}`)
  }
  // Outside /api/v4, GATE_NON_API_JOB_TOKENS=deny: git over HTTP and the registry's token endpoint.
  const basic = `Authorization: Basic ${Buffer.from(`gitlab-ci-token:${TOKENS.app}`).toString('base64')}\r\n`
  assert.equal(await get(port, '/other/tools.git/info/refs?service=git-upload-pack', basic), 403)
  assert.equal(await get(port, '/jwt/auth?service=container_registry&scope=repository:other/tools:pull', basic), 403)
  // Without a job token, other paths still pass.
  assert.equal(await get(port, '/other/tools.git/info/refs?service=git-upload-pack', ''), 200)
  const reached = g.seen.map(s => `${s.method} ${s.url} ${String(s.headers['job-token'] ?? s.headers.authorization ?? '')}`)
  assert.ok(!reached.some(r => r.includes(TOKENS.app) || r.includes('Basic ')), `reached GitLab: ${reached.join('; ')}`)
  assert.ok(reached.some(r => r.startsWith('GET /other/tools.git/info/refs')), reached.join('; '))
})
