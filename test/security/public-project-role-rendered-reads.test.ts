// Reads whose handler authorizes only what a public project's feature gives a job outside its
// allowlist, but whose answer GitLab renders in part by an ability ProjectPolicy gives only by
// role: where GitLab's copy of the allowlist, stale once the gate owns it, still lists the job,
// GitLab rendered that part by the job user's role. No parameter keeps it out and the gate cannot
// strip it, so the gate refuses these reads to such a job.
//
// - The environments list: each environment's cluster agent (its name, its configuration
//   project), Kubernetes namespace and Flux resource path, by read_cluster_agent, a Developer's
//   (lib/api/entities/environment.rb, can_read_cluster_agent?).
// - A package's file list: the pipelines that built each file (their refs, commits and users), by
//   read_pipeline (lib/api/entities/package_file.rb, can_read_pipeline?).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { checkOutsideReads } from '../helpers/outside-allowlist.ts'

const lastDecision = (g: TestGate): Record<string, unknown> | undefined => g.logs.filter(l => l.msg === 'decision').at(-1)

for (const visibility of ['public', 'internal'] as const) {
  test(`a job outside ${visibility === 'public' ? 'a' : 'an'} ${visibility} project's allowlist reads nothing GitLab renders by its user's role`, async (t) => {
    const g = await startTestGate(t)
    // other/tools (300): every feature enabled, an allowlist without acme/app (100).
    g.gitlab.projects.get(300)!.visibility = visibility
    await checkOutsideReads(t, g, ['/projects/300/environments', '/projects/300/environments?search=production', '/projects/other%2Ftools/environments',
      '/projects/300/packages/7/package_files', '/projects/300/packages/7/package_files?order_by=file_name']
      .map(path => ({ name: path, path, status: 403, reason: 'NOT_ALLOWLISTED' })))
  })
}

test('a job allowlisted with read_environments still lists environments, GitLab rendering them by its role', async (t) => {
  const g = await startTestGate(t)
  g.gitlab.projects.get(300)!.visibility = 'public'
  await g.store.put({ projectId: 300, projectPath: 'other/tools', inboundEnabled: true, entries: [{ targetType: 'project', targetId: 100, defaultPermissions: false, jobTokenPolicies: ['read_environments'], addedBy: { id: 1 }, createdAt: '2026-01-01T00:00:00Z' }] })
  const before = g.seen.length
  const res = await send(g.url, 'GET', '/api/v4/projects/300/environments', { 'job-token': TOKENS.app })
  assert.equal(lastDecision(g)?.reason, 'POLICIES_GRANTED')
  assert.equal(g.seen.length, before + 1, 'forwarded')
  assert.equal(res.status, 200, res.text)
})

test('a job outside a public project\'s allowlist still downloads a package file', async (t) => {
  const g = await startTestGate(t)
  g.gitlab.projects.get(300)!.visibility = 'public'
  const before = g.seen.length
  const res = await send(g.url, 'GET', '/api/v4/projects/300/packages/7/package_files/9/download', { 'job-token': TOKENS.app })
  assert.equal(res.status, 200, res.text)
  assert.equal(lastDecision(g)?.reason, 'PUBLIC_PROJECT_FEATURES')
  assert.equal(g.seen.length, before + 1, 'forwarded')
})
