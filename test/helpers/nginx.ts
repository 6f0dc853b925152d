// Debian's nginx running deploy/nginx/job-token-gate.conf, as shipped, on a free port: the
// upstreams replaced by the test's fake GitLab and gate listeners. Tests skip without nginx
// outside CI and fail in CI (.ci/run installs nginx-light).

import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { send } from './http.ts'
import { freePort } from './redis.ts'
import { eventually } from './eventually.ts'

export const NGINX: string | null = ['/usr/sbin/nginx', '/usr/bin/nginx'].find(candidate => spawnSync(candidate, ['-v']).status === 0) ?? null

/** The `skip` option of a test that needs nginx. */
export const needsNginx = NGINX === null && process.env.CI !== 'true' ? 'nginx is not installed (.ci/run installs nginx-light)' : false

export interface ShippedNginxUpstreams {
  /** GitLab (`host:port`). */
  readonly gitlab: string
  /** The gate's decision listener (GATE_AUTH_LISTEN) port. */
  readonly auth: number
  /** The gate's API listener (GATE_LISTEN) port. */
  readonly api: number
}

/** Starts nginx with the shipped configuration; its base URL. Stopped after the test. */
export async function startShippedNginx (t: TestContext, upstreams: ShippedNginxUpstreams, options: { readonly http2?: boolean } = {}): Promise<{ base: string, port: number, h2Base: string }> {
  const port = await freePort()
  // With `http2`, a second listener of the same server speaks HTTP/2 with prior knowledge (h2c).
  const h2Port = options.http2 === true ? await freePort() : null
  const shipped = readFileSync(fileURLToPath(new URL('../../deploy/nginx/job-token-gate.conf', import.meta.url)), 'utf8')
  const site = shipped
    .replace('server gitlab-webservice:8181;', `server ${upstreams.gitlab};`)
    .replace('server 127.0.0.1:8183;', `server 127.0.0.1:${upstreams.auth};`)
    .replace('server 127.0.0.1:8190;', `server 127.0.0.1:${upstreams.api};`)
    .replace('listen 8080;', `listen 127.0.0.1:${port};${h2Port === null ? '' : ` listen 127.0.0.1:${h2Port} http2;`}`)
  assert.notEqual(site, shipped)
  const base = await startNginx(t, port, dir => {
    writeFileSync(join(dir, 'site.conf'), site)
    return `include ${join(dir, 'site.conf')};`
  }, '/')
  return { base, port, h2Base: h2Port === null ? '' : `http://127.0.0.1:${h2Port}` }
}

/**
 * Starts nginx on `port` with `http` (given nginx's directory, what goes in its http block) and
 * waits until `probe` answers; its base URL. Stopped after the test.
 */
export async function startNginx (t: TestContext, port: number, http: (dir: string) => string, probe: string): Promise<string> {
  assert.ok(NGINX !== null, 'nginx must be installed in CI')
  const dir = mkdtempSync(join(tmpdir(), 'nginx-'))
  // Started as root, nginx's workers run as nobody: they must reach the temporary files a
  // buffered request body is written to.
  chmodSync(dir, 0o755)
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'logs'))
  writeFileSync(join(dir, 'nginx.conf'), [
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'logs', 'error.log')} warn;`,
    'events { worker_connections 64; }',
    'http {',
    `  access_log off; client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;`,
    `  ${http(dir)}`,
    '}',
    ''
  ].join('\n'))
  const child = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  t.after(() => { child.kill('SIGTERM') })
  const base = `http://127.0.0.1:${port}`
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`)
    return await send(base, 'GET', probe)
  }, { message: 'nginx answering' })
  return base
}
