// What the real-client tests share: a test gate whose upstream is the fake package registry,
// the four kinds of job token of the accessed project, running a client program, and what a
// missing client does (fails under CI=true, skipped and said so elsewhere).
//
// The accessed project is acme/lib (200), with the allowlist of test/helpers/gate.ts:
// - self: acme/lib's own job;
// - withPolicy: acme/platform/web (600), allowlisted (here, nearer than its acme group's entry)
//   with the fine-grained policy admin_packages, which implies read_packages;
// - readOnly: acme/platform/app (100), allowlisted with read_packages only: it installs, and
//   publishing is refused for admin_packages;
// - notAllowlisted: other/tools (300), on no allowlist of acme/lib.

import { spawn, spawnSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { TOKENS, WORLD_GRANTS, startTestGate, type TestGate } from '../helpers/gate.ts'
import { adminGate } from '../helpers/admin-gate.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { createFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.ts'

export const PROJECT = 200
export const GROUP = 10
export const JOBS = {
  self: TOKENS.lib,
  withPolicy: TOKENS.web,
  readOnly: TOKENS.app,
  notAllowlisted: TOKENS.tools
} as const

export const MISSING_ADMIN_PACKAGES = 'The following token permission is required: admin_packages'
export const NOT_ALLOWLISTED = 'Authentication by CI/CD job token not allowed'

export interface RegistryGate {
  readonly gate: TestGate
  readonly registry: FakeRegistry
  /** The gate's URL: GitLab's external URL as the clients see it. */
  readonly url: string
  readonly api: string
}

/** A gate in front of a fake package registry whose absolute URLs point at the gate. */
export async function startRegistryGate (t: TestContext, options: { admin?: boolean } = {}): Promise<RegistryGate> {
  const registry = createFakeRegistry()
  const gate = options.admin === true ? await adminGate(t) : await startTestGate(t)
  const lib = WORLD_GRANTS.find(g => g.projectId === PROJECT)!
  const withPolicy = { targetType: 'project', targetId: 600, defaultPermissions: false, jobTokenPolicies: ['admin_packages'], addedBy: { id: 1 }, createdAt: '2026-01-01T00:00:00Z' } as const
  await gate.store.put(validateProjectGrants({ ...lib, entries: [...lib.entries, withPolicy] }, { settings: createInstanceSettings(), policies: createPolicyIndex(loadCatalog().policies) }))
  gate.respond = registry.handle
  registry.externalUrl = gate.url
  return { gate, registry, url: gate.url, api: `${gate.url}/api/v4` }
}

/**
 * Whether a client program runs (`probe` is its version command). A missing client fails the
 * test under CI=true (.ci/run installs it); elsewhere the test is skipped, saying what is missing.
 */
export function requireClient (t: TestContext, name: string, probe: readonly string[], hint: string): boolean {
  const result = spawnSync(probe[0]!, probe.slice(1), { encoding: 'utf8', timeout: 60_000 })
  if (result.status === 0) return true
  return requireTool(t, `${name} is not installed (${probe.join(' ')}: ${result.error?.message ?? `exit ${String(result.status)}`}): ${hint}`)
}

export interface RunResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  /** stdout and stderr together: what the user sees. */
  readonly output: string
}

/** Runs a client as a CI job would (`stdin`: a file to read from); `timeoutMs` only detects a hang. */
export async function run (cmd: string, args: readonly string[], options: { cwd?: string, env?: Record<string, string>, timeoutMs?: number, stdin?: string } = {}): Promise<RunResult> {
  const input = options.stdin === undefined ? 'ignore' : openSync(options.stdin, 'r')
  const child = spawn(cmd, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: [input, 'pipe', 'pipe'] })
  if (typeof input === 'number') closeSync(input)
  if (child.stdout === null || child.stderr === null) throw new Error(`${cmd}: no output pipes`)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c })
  child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, options.timeoutMs ?? 120_000)
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', resolve)
  })
  clearTimeout(timer)
  return { code, stdout, stderr, output: `${stdout}\n${stderr}` }
}

/** A fresh directory, removed after the test. */
export function tempDir (t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `jtg-${prefix}-`))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

/** Asserts a client succeeded, showing its output otherwise. */
export function assertOk (result: RunResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed:\n${result.output}`)
}

/** Asserts a client failed, showing its output otherwise. */
export function assertFailed (result: RunResult, what: string): void {
  assert.notEqual(result.code, 0, `${what} should have failed:\n${result.output}`)
}

/** The forwarded requests that would write (anything but GET and HEAD). */
export function upstreamWrites (g: TestGate): string[] {
  return g.seen.filter(s => s.method !== 'GET' && s.method !== 'HEAD').map(s => `${s.method} ${s.url}`)
}

/**
 * The gate's decision log holds a deny of `method` on the catalog route `routeId` for `reason`
 * (and, for MISSING_POLICIES, the missing policy): what the operator reads when a client shows
 * only "403 Forbidden".
 */
export function assertDenied (g: TestGate, method: string, routeId: string, reason: string, missing?: string): void {
  const hit = g.logs.find(l => l.decision === 'deny' && l.method === method && l.route_id === routeId && l.reason === reason)
  assert.ok(hit !== undefined, `no ${reason} deny of ${method} ${routeId} in the decision log:\n${g.logs.filter(l => l.decision !== undefined).map(l => JSON.stringify(l)).join('\n')}`)
  if (missing !== undefined) assert.deepEqual(hit.missing_policies, [missing])
}
