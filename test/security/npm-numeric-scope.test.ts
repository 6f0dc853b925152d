// Regression: npm instance routes whose @scope is all digits were forwarded undecided.
//
// GitLab's npm helper (lib/api/helpers/packages/npm.rb, project_id_or_nil for :instance) finds
// the @scope's root namespace BY PATH (`Namespace.top_most.by_path(scope)`), and a top-level group
// may have an all-digit path ("2024"). The gate asked `GET /groups/<scope>/packages`, which reads
// an all-digit :id as a group id: for @2024/tool it listed group #2024 (none here), found no
// package and forwarded the job token with NO_PROJECT. Any job could then read, set or delete
// the dist-tags of that project's packages, whatever its allowlist said.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { scrape, total } from '../helpers/metrics.ts'
import { loadCatalog } from '../../src/catalog/load.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { decisionOf, forwarded, pkg, projectsGate } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const settings = createInstanceSettings()
const policies = createPolicyIndex(loadCatalog().policies)

async function numericWorld (t: Parameters<typeof projectsGate>[0]): Promise<Awaited<ReturnType<typeof projectsGate>>> {
  const g = await projectsGate(t)
  // Top-level group "2024" (id 30) with 2024/registry (800); group #2024 does not exist. The
  // allowlist of 800 (in the gate's store) names nobody.
  g.gitlab.groups.set(30, { id: 30, fullPath: '2024', parentId: null })
  g.gitlab.projects.set(800, { id: 800, pathWithNamespace: '2024/registry', namespace: { id: 30, kind: 'group', fullPath: '2024', parentId: null } })
  g.gitlab.packages.push(pkg('@2024/tool', '1.0.0', 'npm', 800, '2026-01-01T00:00:00Z'))
  await g.store.put(validateProjectGrants({ projectId: 800, projectPath: '2024/registry', inboundEnabled: true, entries: [] }, { settings, policies }))
  return g
}

test('npm instance routes of a package under an all-digit top-level group are decided on its project, not forwarded', async t => {
  const g = await numericWorld(t)
  for (const [method, path, body] of [
    ['PUT', '/api/v4/packages/npm/-/package/@2024%2ftool/dist-tags/latest', '"1.0.0"'],
    ['DELETE', '/api/v4/packages/npm/-/package/@2024%2ftool/dist-tags/latest', undefined],
    ['GET', '/api/v4/packages/npm/-/package/@2024%2ftool/dist-tags', undefined],
    ['GET', '/api/v4/packages/npm/@2024%2ftool', undefined]
  ] as const) {
    const res = await send(g.url, method, path, job(TOKENS.tools), body)
    const log = await decisionOf(g, path)
    assert.equal(forwarded(g, path), 0, `${method} ${path} was forwarded: ${String(log.decision)} ${String(log.reason)}`)
    assert.equal(res.status, 403, `${method} ${path}`)
    assert.equal(res.json().code, 'NOT_ALLOWLISTED', `${method} ${path}`)
    assert.deepEqual([log.decision, log.accessed_project_id], ['deny', 800], `${method} ${path}`)
  }
  // One GitLab call per write (each asks GitLab), the reads answered from the cache.
  assert.equal((await send(g.url, 'GET', '/api/v4/packages/npm/-/package/@2024%2ftool/dist-tags', job(TOKENS.tools))).status, 403)
  const { samples } = await scrape(g.healthUrl)
  assert.equal(total(samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'npm_metadata', outcome: 'ok' }), 2)
})

test('npm: an all-digit scope with packages in several projects, which the groups API cannot list by path, is refused with PACKAGE_PROJECT_UNCERTAIN', async t => {
  const g = await numericWorld(t)
  // A second project of group "2024" publishes a newer version: GitLab takes the newest package's
  // project; the gate could only list group #2024, so it cannot tell which: refused, not forwarded.
  g.gitlab.projects.set(802, { id: 802, pathWithNamespace: '2024/other', namespace: { id: 30, kind: 'group', fullPath: '2024', parentId: null } })
  g.gitlab.packages.push(pkg('@2024/tool', '2.0.0', 'npm', 802, '2026-02-01T00:00:00Z'))
  const path = '/api/v4/packages/npm/-/package/@2024%2ftool/dist-tags/latest'
  const res = await send(g.url, 'PUT', path, job(TOKENS.tools), '"2.0.0"')
  assert.equal(res.status, 403)
  assert.equal(res.json().code, 'PACKAGE_PROJECT_UNCERTAIN')
  assert.equal(forwarded(g, path), 0)
  const log = await decisionOf(g, path)
  assert.deepEqual([log.decision, log.reason], ['deny', 'PACKAGE_PROJECT_UNCERTAIN'])
  const { samples } = await scrape(g.healthUrl)
  assert.equal(total(samples, 'job_token_gate_requests_total', { decision: 'deny', reason: 'PACKAGE_PROJECT_UNCERTAIN' }), 1)
  // The group route names the group by id, as GitLab reads it: group 30 is listed and decided.
  const byGroup = '/api/v4/groups/30/-/packages/npm/-/package/@2024%2ftool/dist-tags/latest'
  const decided = await send(g.url, 'PUT', byGroup, job(TOKENS.tools), '"2.0.0"')
  assert.equal(forwarded(g, byGroup), 0)
  assert.equal((await decisionOf(g, byGroup)).accessed_project_id, 802)
  assert.equal(decided.status, 403)
})
