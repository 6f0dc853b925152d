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
import { freePort } from './ports.ts'
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
  const shipped = readFileSync(fileURLToPath(new URL('../../deploy/nginx/job-token-gate.conf', import.meta.url)), 'utf8')
  // With `http2`, a second listener of the same server speaks HTTP/2 with prior knowledge (h2c).
  const http2 = options.http2 === true
  const { base, ports } = await startNginx(t, (dir, [port, h2Port]) => {
    const site = shipped
      .replace('server gitlab-webservice:8181;', `server ${upstreams.gitlab};`)
      .replace('server 127.0.0.1:8183;', `server 127.0.0.1:${upstreams.auth};`)
      .replace('server 127.0.0.1:8190;', `server 127.0.0.1:${upstreams.api};`)
      .replace('listen 8080;', `listen 127.0.0.1:${port!};${http2 ? ` listen 127.0.0.1:${h2Port!} http2;` : ''}`)
    assert.notEqual(site, shipped)
    writeFileSync(join(dir, 'site.conf'), site)
    return `include ${join(dir, 'site.conf')};`
  }, '/', http2 ? 2 : 1)
  return { base, port: ports[0]!, h2Base: http2 ? `http://127.0.0.1:${ports[1]!}` : '' }
}

/**
 * Starts nginx with `http` (given nginx's directory and `count` free ports for its listeners,
 * what goes in its http block) and waits until `probe` answers; its base URL (the first port)
 * and its ports. Stopped after the test.
 *
 * A free port is only free when it is probed: another test's server, in another process, may
 * bind it before nginx does. nginx then fails to bind and exits, and until it does, that server
 * answers the probe and the test's requests as if it were nginx. So nginx is taken as started
 * only once it wrote its pid file, which it does after it bound every listener (from then on the
 * ports are its own), and it is started again on other ports if it could not bind them.
 */
export async function startNginx (t: TestContext, http: (dir: string, ports: readonly number[]) => string, probe: string, count = 1): Promise<{ base: string, ports: number[] }> {
  for (let attempt = 0; ; attempt++) {
    const ports: number[] = []
    for (let i = 0; i < count; i++) ports.push(await freePort())
    try {
      return { base: await launchNginx(t, ports, http, probe), ports }
    } catch (err) {
      if (attempt >= 3 || !(err instanceof NginxBindError)) throw err
    }
  }
}

/** nginx could not bind a port of its configuration: another process holds it. */
export class NginxBindError extends Error {}

/**
 * Starts nginx once on `ports`; its base URL (the first port) once nginx itself bound every port
 * and answers `probe`. Rejects with NginxBindError when a port is another process's.
 */
export async function launchNginx (t: TestContext, ports: readonly number[], http: (dir: string, ports: readonly number[]) => string, probe: string): Promise<string> {
  assert.ok(NGINX !== null, 'nginx must be installed in CI')
  const dir = mkdtempSync(join(tmpdir(), 'nginx-'))
  // Started as root, nginx's workers run as nobody: they must reach the temporary files a
  // buffered request body is written to.
  chmodSync(dir, 0o755)
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'logs'))
  const pidFile = join(dir, 'nginx.pid')
  writeFileSync(join(dir, 'nginx.conf'), [
    'worker_processes 1;',
    `pid ${pidFile};`,
    `error_log ${join(dir, 'logs', 'error.log')} warn;`,
    'events { worker_connections 64; }',
    'http {',
    `  access_log off; client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;`,
    `  ${http(dir, ports)}`,
    '}',
    ''
  ].join('\n'))
  const child = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = new Promise<void>(resolve => child.once('close', () => resolve()))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
  }
  t.after(stop)
  const base = `http://127.0.0.1:${ports[0]!}`
  // Its pid file is written once every port is bound: until then, whatever answers is not nginx.
  const owned = (): boolean => {
    try {
      return Number(readFileSync(pidFile, 'utf8').trim()) === child.pid
    } catch {
      return false
    }
  }
  // nginx tries to bind a held port for two and a half seconds before it exits.
  const started = await eventually(async () => {
    if (child.exitCode !== null) return 'exited'
    if (!owned()) return false
    await send(base, 'GET', probe)
    return 'answering'
  }, { message: 'nginx answering' }).catch(async (err: Error) => { await stop(); throw err })
  if (started === 'exited') {
    await exited
    const message = `nginx exited: ${stderr}`
    throw /Address already in use/.test(stderr) ? new NginxBindError(message) : new Error(message)
  }
  return base
}
