// Finding: a full path in a /projects/ URL equal to the job project's path was taken as self
// access without asking GitLab which project holds that path now. The job project's path comes
// from the identity's namespace cache (then 10 minutes), not from the project lookup that
// GATE_PROJECT_LOOKUP_TTL_MS bounds: after the job's project 100 (acme/platform/app) was renamed
// and a new project 800 took acme/platform/app, the job's request to
// /projects/acme%2Fplatform%2Fapp/... was allowed as SELF_ACCESS and forwarded, and GitLab served
// project 800, whose allowlist was never checked (the same request by id 800 was refused).
//
// Now the job's own path is resolved as any other path: GitLab's answer decides which project it is.
// A gate without the service token (the JWT resolver) is shown public projects only: there the
// path the job's signed token names is still its own private project.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { loadConfig } from '../../src/config.ts'
import { createGate } from '../../src/gate/server.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import type { JobIdentity } from '../../src/identity/types.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

const PATH = '/api/v4/projects/acme%2Fplatform%2Fapp/packages/generic/x/1.0.0/x.bin'

test("a path the job's project had before a rename is the project GitLab routes it to now", async t => {
  // Identity and project lookups short-lived, so only the namespace cache remembers the old path.
  const gate = await startTestGate(t, { GATE_IDENTITY_CACHE_TTL_MS: '200', GATE_PROJECT_LOOKUP_TTL_MS: '200' })
  const before = await fetch(gate.url + PATH, { headers: { 'job-token': TOKENS.app } })
  assert.equal(before.status, 200, 'the job reads its own project by path')
  await before.arrayBuffer()

  // In GitLab: 100 becomes acme/platform/app-old; a new project 800 (no allowlist in the gate) takes the path.
  const app = gate.gitlab.projects.get(100)!
  gate.gitlab.projects.set(100, { ...app, pathWithNamespace: 'acme/platform/app-old' })
  gate.gitlab.projects.set(800, { ...app, id: 800, pathWithNamespace: 'acme/platform/app' })
  await new Promise(resolve => setTimeout(resolve, 400))

  gate.seen.length = 0
  const after = await fetch(gate.url + PATH, { headers: { 'job-token': TOKENS.app } })
  const body = await after.json() as Record<string, unknown>
  assert.equal(after.status, 403, JSON.stringify(body))
  assert.equal(body.code, 'UNKNOWN_PROJECT')
  assert.equal(gate.seen.length, 0, 'nothing reached GitLab')
  const line = gate.logs.filter(l => l.msg === 'decision').at(-1)
  assert.equal(line?.accessed_project_id, 800)

  // The job's project under its new path is still self access.
  const own = await fetch(`${gate.url}/api/v4/projects/acme%2Fplatform%2Fapp-old/packages/generic/x/1.0.0/x.bin`, { headers: { 'job-token': TOKENS.app } })
  assert.equal(own.status, 200)
  await own.arrayBuffer()
  assert.equal(gate.logs.filter(l => l.msg === 'decision').at(-1)?.reason, 'SELF_ACCESS')
})

test('without the service token the job reads its own private project by path; another private path is unknown', async t => {
  const seen: string[] = []
  const gitlab = await startFakeGitlab({
    anonymousPathLookups: true,
    projects: [
      { id: 100, pathWithNamespace: 'acme/platform/app', namespace: { id: 11, kind: 'group', fullPath: 'acme/platform', parentId: 10 } },
      { id: 300, pathWithNamespace: 'other/tools', namespace: { id: 20, kind: 'group', fullPath: 'other', parentId: null } }
    ],
    fallback: (req, res) => { seen.push(req.url ?? ''); res.end('{}') }
  })
  t.after(() => gitlab.close())
  // As the JWT resolver answers: the job's project and path from its signed token.
  const identity: JobIdentity = { jobId: 1, jobProjectId: 100, jobProjectPath: 'acme/platform/app', ancestorGroupIds: [11, 10], userId: 7 }
  const resolver = { resolve: async () => identity, close: async () => {} }
  const config = loadConfig({ GATE_UPSTREAM_URL: gitlab.url, GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0', GATE_UNRESOLVED_PROJECT: 'defer', GATE_INSTANCE_TOKEN_PREFIX: '' })
  const logs: Array<Record<string, unknown>> = []
  const gate = createGate(config, { store: await createMemoryStore(), resolver, logger: pino({ level: 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>) } }) })
  await gate.listen()
  t.after(() => gate.close(0))
  const url = `http://127.0.0.1:${gate.address().port}`

  const own = await fetch(`${url}/api/v4/projects/ACME%2Fplatform%2Fapp/packages/generic/x/1.0.0/x.bin`, { headers: { 'job-token': TOKENS.app } })
  assert.equal(own.status, 200, await own.text())
  assert.equal(logs.filter(l => l.msg === 'decision').at(-1)?.reason, 'SELF_ACCESS')
  assert.deepEqual(seen, ['/api/v4/projects/ACME%2Fplatform%2Fapp/packages/generic/x/1.0.0/x.bin'])

  const other = await fetch(`${url}/api/v4/projects/other%2Ftools/packages/generic/x/1.0.0/x.bin`, { headers: { 'job-token': TOKENS.app } })
  const body = await other.json() as Record<string, unknown>
  assert.equal(other.status, 403, JSON.stringify(body))
  assert.equal(body.code, 'UNKNOWN_PROJECT')
  assert.equal(seen.length, 1, 'nothing more reached GitLab')
})
