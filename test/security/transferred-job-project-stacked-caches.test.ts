// A job's identity (its project's ancestor groups included) was kept for the token cache's TTL
// from the moment it was resolved, whatever the age of the namespace answers it was built from:
// a job whose token was first seen near the end of its project's namespace cache entry carried
// the groups of that entry for a whole token TTL more, and a parent group's cached parent could
// add its own TTL again. After the job's project moved out of a group, that group's allowlist
// entries then let the job in for up to GATE_NAMESPACE_CACHE_TTL_MS plus the project's and the
// token's TTLs, where the gate promises at most GATE_NAMESPACE_CACHE_TTL_MS. An identity and a
// project's chain now live no longer than the oldest namespace answer they are made of.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

// acme/lib (200) lets every job of group acme (10) in with default permissions; acme/platform/web
// (600, in acme/platform < acme) has no entry of its own there.
const RELEASES = '/api/v4/projects/200/releases'
const NAMESPACE_TTL_MS = 1000
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, Math.max(0, ms)))

async function releases (g: TestGate, token: string): Promise<{ status: number, code: unknown }> {
  const res = await send(g.url, 'GET', RELEASES, { 'job-token': token })
  return { status: res.status, code: res.status === 200 ? undefined : res.json().code }
}

// Each case: the job project whose earlier job reads the namespace answers, the project of a job
// whose token is first seen late in their cache entries, and the move in GitLab.
interface Case {
  readonly name: string
  readonly early: string
  readonly late: { readonly token: string, readonly projectId: number }
  readonly setup?: (g: TestGate) => void
  readonly move: (g: TestGate) => void
}

const team = { id: 12, kind: 'group' as const, fullPath: 'acme/platform/team', parentId: 11 }

const cases: Case[] = [
  {
    name: 'the job project moved to another group',
    early: TOKENS.web,
    late: { token: 'glcbt-64_weblatejobrunning00000', projectId: 600 },
    move: g => {
      const web = g.gitlab.projects.get(600)!
      g.gitlab.projects.set(600, { ...web, pathWithNamespace: 'other/web', namespace: { id: 20, kind: 'group', fullPath: 'other', parentId: null } })
    }
  },
  {
    name: 'a group above the job project\'s group moved (its parent read for another project)',
    early: 'glcbt-64_teamajobrunning00000000',
    late: { token: 'glcbt-64_teambjobrunning00000000', projectId: 651 },
    setup: g => {
      // acme (10) > acme/platform (11) > acme/platform/team (12), with projects 650 and 651 in it.
      g.gitlab.groups.set(12, { id: 12, fullPath: team.fullPath, parentId: 11 })
      g.gitlab.projects.set(650, { id: 650, pathWithNamespace: 'acme/platform/team/a', namespace: team })
      g.gitlab.projects.set(651, { id: 651, pathWithNamespace: 'acme/platform/team/b', namespace: team })
      g.gitlab.jobs.set('glcbt-64_teamajobrunning00000000', { id: 10, status: 'running', projectId: 650, userId: 7 })
    },
    // acme/platform (11) moves under other (20): the chain of team is team < platform < other now.
    move: g => { g.gitlab.groups.set(11, { id: 11, fullPath: 'other/platform', parentId: 20 }) }
  }
]

for (const c of cases) {
  test(`${c.name}: the old group's entry stops letting its jobs in within GATE_NAMESPACE_CACHE_TTL_MS`, async t => {
    const g = await startTestGate(t, { GATE_IDENTITY_CACHE_TTL_MS: String(NAMESPACE_TTL_MS), GATE_NAMESPACE_CACHE_TTL_MS: String(NAMESPACE_TTL_MS) })
    c.setup?.(g)
    g.gitlab.jobs.set(c.late.token, { id: 9, status: 'running', projectId: c.late.projectId, userId: 7 })
    // The namespace answers are read now, for an earlier job.
    const readFrom = performance.now()
    assert.deepEqual(await releases(g, c.early), { status: 200, code: undefined }, 'the acme group entry lets the job in')
    const movedAt = performance.now()
    c.move(g)
    // Another job shows its token for the first time near the end of the cache entries.
    await sleep(NAMESPACE_TTL_MS * 0.7 - (performance.now() - readFrom))
    const late = await releases(g, c.late.token)
    // Answered within the TTL of answers read after readFrom, the old groups still decide; on a
    // machine too busy to ask in time the answer may be either, and the bound below still holds.
    if (performance.now() - readFrom < NAMESPACE_TTL_MS) assert.equal(late.status, 200, 'within the namespace TTL the old groups may still decide')
    // Past the namespace TTL since the move (and since the answers were read), GitLab's groups decide.
    await sleep(movedAt + NAMESPACE_TTL_MS * 1.2 - performance.now())
    assert.ok(performance.now() - movedAt > NAMESPACE_TTL_MS)
    assert.deepEqual(await releases(g, c.late.token), { status: 403, code: 'NOT_ALLOWLISTED' })
    assert.deepEqual(await releases(g, c.early), { status: 403, code: 'NOT_ALLOWLISTED' })
  })
}
