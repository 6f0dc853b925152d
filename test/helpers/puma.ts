// A real Puma (Debian's `puma`, the server GitLab runs Rails in) serving a Rack app that answers
// every request with the env Puma built: the HTTP_* and CONTENT_* keys as JSON. It shows how
// Puma reads header names the gate forwards, not our reading of Puma.

import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { pino } from 'pino'
import { loadConfig } from '../../src/config.ts'
import { createGate } from '../../src/gate/server.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createJobResolver } from '../../src/identity/resolver.ts'
import { requireTool } from './require-tool.ts'

const APP = `require 'json'
run lambda { |env|
  seen = env.select { |k, _| k.start_with?('HTTP_') || k.start_with?('CONTENT_') }
  [200, { 'content-type' => 'application/json' }, [JSON.generate(seen)]]
}
`

/**
 * A config.ru answering the client's address as GitLab's IP restrictions read it: Rails'
 * ActionDispatch::RemoteIp (`action_dispatch.remote_ip`, Gitlab::Middleware::IpRestrictor), with
 * the trusted proxies GitLab sets (config/initializers/trusted_proxies.rb: loopback plus its
 * `trusted_proxies`) and Rails' spoofing check on. Needs Ruby's ActionDispatch (ruby-actionpack).
 * The answer: `remote_ip`, and the Client-IP and X-Forwarded-For headers Rails was given.
 */
export const REMOTE_IP_APP = `require 'json'
require 'ipaddr'
require 'action_dispatch'
use ActionDispatch::RemoteIp, true, [IPAddr.new('127.0.0.1'), IPAddr.new('::1')]
run lambda { |env|
  [200, { 'content-type' => 'application/json' }, [JSON.generate('remote_ip' => env['action_dispatch.remote_ip'].to_s, 'client_ip' => env['HTTP_CLIENT_IP'], 'forwarded_for' => env['HTTP_X_FORWARDED_FOR'])]]
}
`

/** Null when `puma --version` runs, else what is missing. */
export function pumaUnavailable (): string | null {
  const probe = spawnSync('puma', ['--version'], { encoding: 'utf8' })
  if (probe.error !== undefined) return `puma is not installed (${probe.error.message}); install the Debian package puma`
  if (probe.status !== 0) return `puma --version failed: ${probe.stderr.trim().split('\n')[0] ?? ''}`
  return null
}

/** True when Puma can run; otherwise fails (CI) or skips the test loudly and returns false. */
export function requirePuma (t: TestContext): boolean {
  const missing = pumaUnavailable()
  return requireTool(t, missing === null ? null : `this test needs Puma: ${missing}`)
}

export interface Puma {
  readonly url: string
  readonly version: string
}

/**
 * Starts Puma on a free port (closed after the test); resolves once it listens. `app`: the
 * config.ru to serve, the env's headers as JSON by default.
 */
export async function startPuma (t: TestContext, app: string = APP): Promise<Puma> {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-puma-'))
  writeFileSync(join(dir, 'config.ru'), app)
  const child = spawn('puma', ['--bind', 'tcp://127.0.0.1:0', '--threads', '1:1', '--environment', 'test', join(dir, 'config.ru')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(() => {
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  let output = ''
  return await new Promise<Puma>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`puma did not start within 30 s: ${output}`)) }, 30_000)
    const read = (chunk: Buffer): void => {
      output += chunk.toString()
      const listening = /Listening on (?:http:\/\/|tcp:\/\/)(127\.0\.0\.1:\d+)/.exec(output)
      if (listening === null) return
      clearTimeout(timer)
      resolve({ url: `http://${listening[1]}`, version: /Puma version: (\S+)/.exec(output)?.[1] ?? 'unknown' })
    }
    child.stdout.on('data', read)
    child.stderr.on('data', read)
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`puma exited (${String(code)}): ${output}`)) })
  })
}

/** A gate on `listen` in front of `upstream` (a Puma running REMOTE_IP_APP), trusting `trustedProxies`; its port. */
export async function gateInFrontOf (t: TestContext, upstream: string, trustedProxies: string, listen = '127.0.0.1:0'): Promise<number> {
  const config = loadConfig({ GATE_UPSTREAM_URL: upstream, GATE_LISTEN: listen, GATE_HEALTH_LISTEN: '127.0.0.1:0', GATE_TRUSTED_PROXIES: trustedProxies, GATE_SERVICE_TOKEN: 'unused-service-token' })
  const gate = createGate(config, { store: await createMemoryStore(), resolver: createJobResolver({ upstream, serviceToken: 'unused-service-token' }), logger: pino({ level: 'silent' }) })
  await gate.listen()
  t.after(() => gate.close(0))
  return gate.address().port
}
