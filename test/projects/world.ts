// The test world of test/helpers/gate.ts, plus what the project lookups of group and instance
// routes read: acme/registry (700, its allowlist names the group `other` with admin_packages)
// becomes a GitLab project, and the decision log line of a request is found by its path.

import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate } from '../helpers/admin-gate.ts'
import type { FakePackage } from '../helpers/fake-gitlab.ts'
import { TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { eventually } from '../helpers/eventually.ts'
import { scrape, total } from '../helpers/metrics.ts'
import { loadCatalog } from '../../src/catalog/load.ts'
import type { GitlabClient, GitlabListAnswer } from '../../src/gitlab/client.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import type { Waiter } from '../../src/waiters.ts'

export async function projectsGate (t: TestContext, env: Record<string, string> = {}): Promise<TestGate> {
  const g = await adminGate(t, { GATE_LOG_RAW_PATH: 'true', ...env })
  g.gitlab.projects.set(700, { id: 700, pathWithNamespace: 'acme/registry', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } })
  return g
}

/**
 * projectsGate with the app job's package in its own project (100), Maven `com/acme/wanted` and
 * npm `@acme/wanted`; the tools and app jobs' tokens resolved, and the group's projects listed
 * once: what a lookup asks GitLab from then on is the package lists and the npm metadata.
 */
export async function lookupsWorld (t: TestContext, env: Record<string, string> = {}): Promise<TestGate> {
  const g = await projectsGate(t, env)
  g.gitlab.packages.push(pkg('com/acme/wanted', '1.0', 'maven', 100, '2026-01-01T00:00:00Z'))
  g.gitlab.packages.push(pkg('@acme/wanted', '1.0.0', 'npm', 100, '2026-01-01T00:00:00Z'))
  for (const token of [TOKENS.tools, TOKENS.app]) assert.equal((await send(g.url, 'GET', '/api/v4/job', { 'job-token': token })).status, 200)
  assert.equal((await send(g.url, 'GET', '/api/v4/groups/acme/-/packages/maven/com/acme/warm/1.0/x.jar', { 'job-token': TOKENS.tools })).status, 200)
  g.gitlab.resetCalls()
  return g
}

let nextId = 1
export function pkg (name: string, version: string | null, packageType: FakePackage['packageType'], projectId: number, createdAt: string, status?: FakePackage['status']): FakePackage {
  return { id: nextId++, name, version, packageType, projectId, createdAt, ...(status === undefined ? {} : { status }) }
}

/** The decision line of the last request to `path` (GATE_LOG_RAW_PATH is on). */
export async function decisionOf (g: TestGate, path: string): Promise<Record<string, unknown>> {
  const wanted = decodeURIComponent(path.split('?')[0]!)
  return await eventually(() => g.logs.findLast(l => l.msg === 'decision' && decodeURIComponent(String(l.path)) === wanted), { message: `decision for ${path}` })
}

/** The requests GitLab received for `path`, forwarded by the gate (lookups excluded). */
export function forwarded (g: TestGate, path: string): number {
  return g.seen.filter(s => s.url === path).length
}

const PACKAGE_ONLY = { repository: 'disabled', builds: 'disabled', merge_requests: 'disabled' } as const

/** projectsGate plus acme/packages (810): repository disabled, package registry enabled; its allowlist names nobody. */
export async function packageOnlyWorld (t: TestContext): Promise<TestGate> {
  const g = await projectsGate(t)
  g.gitlab.projects.set(810, { id: 810, pathWithNamespace: 'acme/packages', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null }, accessLevels: PACKAGE_ONLY })
  const policies = createPolicyIndex(loadCatalog().policies)
  await g.store.put(validateProjectGrants({ projectId: 810, projectPath: 'acme/packages', inboundEnabled: true, entries: [] }, { settings: createInstanceSettings(), policies }))
  return g
}

/** A Maven package a GitLab stand-in lists (the finder's own tests). */
export interface ListedPackage { readonly name: string, readonly version: string | null, readonly project: number, readonly at: string }

/** The job the finder's own tests find for. */
export const FINDER_JOB = Object.freeze({ jobId: 1, jobProjectId: 100, jobProjectPath: 'acme/app', ancestorGroupIds: [10], userId: 7, pipelineId: 1001 })

/** GitLab's package list for `path`: the packages whose name holds its `package_name` (a substring filter, as GitLab's). */
export function mavenListAnswer (packages: readonly ListedPackage[], path: string): GitlabListAnswer {
  const name = new URL(path, 'http://gitlab').searchParams.get('package_name') ?? ''
  const items = packages.filter(p => p.name.includes(name)).map((p, id) => ({ id: id + 1, name: p.name, version: p.version, package_type: 'maven', status: 'default', project_id: p.project, created_at: p.at }))
  return { status: 200, items, truncated: false }
}

/** A request's client for the lookups it waits for (src/waiters.ts), which the test makes go away. */
export function leavingClient (): { readonly waiter: Waiter, leave: () => void } {
  let gone = false
  const watchers = new Set<() => void>()
  return {
    waiter: {
      get gone () { return gone },
      watch (changed) {
        const entry = (): void => { changed() }
        watchers.add(entry)
        return () => { watchers.delete(entry) }
      }
    },
    leave () {
      gone = true
      for (const changed of [...watchers]) changed()
    }
  }
}

/**
 * A GitLab client for the finder alone that holds every npm metadata read until released (`held`:
 * the releases, in order) and counts them (`reads()`); the service token is an administrator's.
 */
export function heldNpmMetadataGitlab (): { gitlab: GitlabClient, held: Array<() => void>, reads: () => number } {
  const held: Array<() => void> = []
  let reads = 0
  const gitlab: GitlabClient = {
    async get (path) {
      if (path === '/api/v4/user' || path === '/api/v4/users/1') return { status: 200, body: { id: 1, is_admin: true } }
      reads++
      await new Promise<void>(resolve => held.push(resolve))
      return { status: 200, body: { versions: { '1.0.0': { dist: { tarball: 'http://gitlab.test/api/v4/projects/200/packages/npm/@acme/pkg/-/@acme/pkg-1.0.0.tgz' } } } } }
    },
    async getList () { return { status: 200, items: [], truncated: false } },
    hasServiceToken: true,
    stats: () => ({}),
    async close () {}
  }
  return { gitlab, held, reads: () => reads }
}

/** The requests the gate has in flight, from its metrics. */
export async function requestsInFlight (g: TestGate): Promise<number> {
  return total((await scrape(g.healthUrl)).samples, 'job_token_gate_in_flight_requests')
}

/**
 * The names the project lookups of `kind` read, in the order GitLab was asked: Maven's package
 * lists, npm's metadata once each (the fake GitLab is the upstream too: a forwarded npm request has
 * the path of its lookup, and comes after it).
 */
export function lookupsAsked (g: TestGate, kind: 'maven' | 'npm'): string[] {
  const names: string[] = []
  for (const target of g.gitlab.targets) {
    const url = new URL(target, 'http://gitlab')
    if (kind === 'maven' && /^\/api\/v4\/groups\/[^/]+\/packages$/.test(url.pathname)) names.push(url.searchParams.get('package_name') ?? '')
    if (kind === 'npm' && /\/packages\/npm\/[^/]+$/.test(url.pathname)) names.push(decodeURIComponent(url.pathname.slice(url.pathname.lastIndexOf('/') + 1)))
  }
  return kind === 'maven' ? names : [...new Set(names)]
}
