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
import { connect } from 'node:net'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { needsNginx, startShippedNginx } from '../helpers/nginx.ts'

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

test('every location of the shipped nginx configuration that reaches GitLab is decided by the gate', { skip: needsNginx }, async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_NON_API_JOB_TOKENS: 'deny' })
  const { port } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: g.gate.authAddress()!.port, api: g.gate.address().port })

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
