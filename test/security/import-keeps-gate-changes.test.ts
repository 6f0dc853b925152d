// Finding: once the gate enforces, it refuses GitLab's own allowlist endpoints, and allowlists
// are changed through the gate's configuration API: GitLab's copy goes stale. A repeated
// `import-allowlists --from-gitlab`, which docs/deploy.md called safe to repeat, replaced every
// project's allowlist with that stale copy: an entry an administrator removed through the gate
// (a revocation) was back, and a job of the removed project was let in again; an entry narrowed to
// fine-grained policies got its default permissions back. So for changes made over GraphQL.
//
// Now the store records the version the import last wrote each document at, and the import
// leaves alone every project written through the configuration API since (naming them, dry run
// included), unless `--replace-changed` says to replace them, audited as such. Both stores.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ServerResponse } from 'node:http'
import { runCli } from '../../src/cli/main.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createRedisStore } from '../../src/grants/redis-store.ts'
import type { GrantStore } from '../../src/grants/store.ts'
import { sendJson } from '../helpers/http.ts'
import { startImportGitlab } from '../helpers/import-gitlab.ts'
import { startRedis } from '../helpers/redis.ts'
import { startStoreGate } from '../helpers/store-gate.ts'
import { TOKENS } from '../helpers/gate.ts'

const SERVICE_TOKEN = 'glpat-import-service-token-0005'
const ADMIN_TOKEN = 'gate-operator-token-reimport'
const MAINTAINER = 'glpat-maintainer-reimport'
const upload = (id: number): string => `/api/v4/projects/${id}/packages/generic/x/1.0.0/x.bin`

interface Project { id: number, path: string, allowed: number[] }

/** GitLab's allowlists (inbound on, default permissions), as the test changes them. */
function gitlabOf (projects: Project[]): (path: string, body: string, res: ServerResponse) => void {
  return (path, _body, res) => {
    for (const p of projects) {
      if (path === `/api/v4/projects/${encodeURIComponent(p.path)}`) return sendJson(res, { id: p.id, path_with_namespace: p.path })
      if (path === `/api/v4/projects/${p.id}/job_token_scope`) return sendJson(res, { inbound_enabled: true, outbound_enabled: false })
      if (path === `/api/v4/projects/${p.id}/job_token_scope/allowlist`) {
        return sendJson(res, [p.id, ...p.allowed].map(id => ({ id, path_with_namespace: id === p.id ? p.path : `acme/p${id}` })), { 'x-next-page': '' })
      }
      if (path === `/api/v4/projects/${p.id}/job_token_scope/groups_allowlist`) return sendJson(res, [], { 'x-next-page': '' })
    }
    // GitLab before 17.6: every entry has default permissions.
    if (path === '/api/graphql') return sendJson(res, { errors: [{ message: "Field 'ciJobTokenScopeAllowlist' doesn't exist on type 'Project'" }] })
  }
}

for (const kind of ['memory', 'redis'] as const) {
  test(`${kind} store: a repeated import leaves alone what was changed through the gate, unless --replace-changed`, async t => {
    // acme/kit (200), acme/tool (300) and acme/box (500) let jobs of acme/platform/app (100) in; acme/other (400) none.
    const projects: Project[] = [{ id: 200, path: 'acme/kit', allowed: [100] }, { id: 300, path: 'acme/tool', allowed: [100] }, { id: 400, path: 'acme/other', allowed: [] }, { id: 500, path: 'acme/box', allowed: [100] }]
    const gitlab = await startImportGitlab(t, SERVICE_TOKEN, gitlabOf(projects))
    const dir = mkdtempSync(join(tmpdir(), 'jtg-reimport-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const redis = kind === 'redis' ? await startRedis(t) : undefined
    const storeEnv = redis === undefined ? { GATE_STATE_FILE: join(dir, 'grants.json') } : { GATE_REDIS_URL: redis.url }
    const cli = async (...argv: string[]): Promise<{ code: number, out: string, err: string }> => {
      let out = ''
      let err = ''
      const code = await runCli(['import-allowlists', '--from-gitlab', ...projects.flatMap(p => ['--project', p.path]), ...argv],
        { out: s => { out += s }, err: s => { err += s } }, { GATE_UPSTREAM_URL: gitlab, GATE_SERVICE_TOKEN: SERVICE_TOKEN, ...storeEnv })
      assert.equal(code, 0, out + err)
      return { code, out, err }
    }
    /** A gate on the store as it is now (the memory store reads its file when it starts). */
    const gate = async (): Promise<{ store: GrantStore, url: string }> => {
      const store = redis === undefined ? await createMemoryStore({ file: join(dir, 'grants.json') }) : await createRedisStore({ url: redis.url })
      t.after(() => store.close())
      const g = await startStoreGate(t, store, {
        projects: projects.map(p => ({ id: p.id, pathWithNamespace: p.path, namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } })),
        users: { [MAINTAINER]: { id: 5, username: 'maintainer', access: { 100: 40, 200: 40, 300: 40, 400: 40, 500: 40 } } },
        env: { GATE_ADMIN_TOKEN: ADMIN_TOKEN, GATE_GRANT_CACHE_TTL_MS: '0', GATE_GRANT_STALE_WINDOW_MS: '0' }
      })
      return { store, url: g.url }
    }
    const job = async (url: string, id: number): Promise<number> => {
      const res = await fetch(url + upload(id), { method: 'PUT', headers: { 'job-token': TOKENS.app }, body: 'x' })
      await res.arrayBuffer()
      return res.status
    }
    const admin = async (url: string, method: string, path: string, body?: unknown): Promise<void> => {
      const res = await fetch(url + path, { method, headers: { 'private-token': ADMIN_TOKEN, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
      assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${await res.text()}`)
    }

    // Imported before the gate enforces: the job gets into both projects.
    assert.match((await cli()).out, /^acme\/kit \(200\): written/m)
    let g = await gate()
    assert.equal(await job(g.url, 200), 200)
    assert.equal(await job(g.url, 300), 200)

    // Through the gate: acme/platform/app's entry on acme/kit revoked, the one on acme/tool narrowed to reading.
    await admin(g.url, 'DELETE', '/api/v4/projects/200/job_token_scope/allowlist/100')
    await admin(g.url, 'PATCH', '/api/v4/projects/300/job_token_scope/allowlist/100', { default_permissions: false, job_token_policies: ['read_packages'] })
    // Through GitLab's GraphQL mutation, answered by the gate, a Maintainer removes it from acme/box.
    const removed = await fetch(g.url + '/api/graphql', {
      method: 'POST',
      headers: { 'private-token': MAINTAINER, 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation { ciJobTokenScopeRemoveProject(input: {projectPath: "acme/box", targetProjectPath: "acme/platform/app"}) { errors } }' })
    })
    const answer = await removed.text()
    assert.equal(removed.status, 200, answer)
    assert.deepEqual((JSON.parse(answer) as { data: unknown }).data, { ciJobTokenScopeRemoveProject: { errors: [] } })
    assert.equal(await job(g.url, 200), 403)
    assert.equal(await job(g.url, 300), 403)
    assert.equal(await job(g.url, 500), 403)
    // GitLab's copy is stale; acme/other gets an entry there, which the gate never changed.
    projects[2]!.allowed.push(100)

    // The dry run and the import name the projects left alone, and write the one the gate did not change.
    const dry = await cli('--dry-run')
    assert.match(dry.out, /^acme\/kit \(200\): left alone, changed through the gate's configuration API since it was last imported \(version 2, imported at version 1\); .*--replace-changed/m)
    assert.match(dry.out, /^acme\/tool \(300\): left alone, changed through the gate's configuration API/m)
    assert.match(dry.out, /^acme\/other \(400\): would be written; 1 entries/m)
    const again = await cli()
    assert.match(again.out, /^acme\/kit \(200\): left alone/m)
    assert.match(again.out, /^acme\/tool \(300\): left alone/m)
    assert.match(again.out, /^acme\/box \(500\): left alone/m)
    assert.match(again.out, /^acme\/other \(400\): written \(version 1\)/m)
    assert.match(again.out, /^total: 4 projects, 1 written, 0 unchanged, 3 left alone \(changed through the gate\)/m)
    g = await gate()
    assert.equal(await job(g.url, 200), 403, 'the revocation was undone by the import')
    assert.equal(await job(g.url, 300), 403, 'the narrowed entry got its default permissions back')
    assert.equal(await job(g.url, 500), 403, 'the removal through GraphQL was undone by the import')
    assert.equal(await job(g.url, 400), 200)

    // A later import changes nothing, and says so again.
    const third = await cli()
    assert.match(third.out, /^acme\/kit \(200\): left alone/m)
    assert.match(third.out, /^acme\/other \(400\): unchanged/m)

    // --replace-changed replaces them, and the audit log says it did.
    const dryReplace = await cli('--dry-run', '--replace-changed')
    assert.match(dryReplace.out, /^acme\/kit \(200\): would be written, replacing changes made through the gate's configuration API/m)
    const replaced = await cli('--replace-changed')
    assert.match(replaced.out, /^acme\/kit \(200\): written \(version 3\), replacing changes made through the gate's configuration API/m)
    assert.match(replaced.out, /^acme\/other \(400\): unchanged/m)
    g = await gate()
    assert.equal(await job(g.url, 200), 200)
    assert.equal(await job(g.url, 300), 200)
    if (kind === 'redis') {
      const events = (await g.store.readAudit(200, { offset: 0, limit: 10 })).events.map(e => e.action)
      assert.deepEqual(events, ['import_allowlist_from_gitlab_replacing_changes', 'remove_project_allowlist_entry', 'import_allowlist_from_gitlab'])
    }
    assert.match(replaced.err, /"action":"import_allowlist_from_gitlab_replacing_changes"/)
    // Imported again: a later import is free to follow GitLab.
    assert.match((await cli()).out, /^acme\/kit \(200\): unchanged/m)
  })
}

test('a document stored before the gate recorded its writer is left alone', async t => {
  const projects: Project[] = [{ id: 200, path: 'acme/kit', allowed: [100] }]
  const gitlab = await startImportGitlab(t, SERVICE_TOKEN, gitlabOf(projects))
  const dir = mkdtempSync(join(tmpdir(), 'jtg-reimport-old-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'grants.json')
  // A state file as an older gate wrote it: no `imported`; it still loads.
  const { writeFileSync } = await import('node:fs')
  writeFileSync(file, JSON.stringify({ format: 'job-token-gate/grants', formatVersion: 1, projects: [{ version: 4, grants: { projectId: 200, projectPath: 'acme/kit', inboundEnabled: true, entries: [] } }] }))
  let out = ''
  const run = async (...argv: string[]): Promise<number> => await runCli(['import-allowlists', '--from-gitlab', '--project', 'acme/kit', ...argv],
    { out: s => { out += s }, err: () => {} }, { GATE_UPSTREAM_URL: gitlab, GATE_SERVICE_TOKEN: SERVICE_TOKEN, GATE_STATE_FILE: file })
  assert.equal(await run(), 0, out)
  assert.match(out, /^acme\/kit \(200\): left alone, changed through the gate's configuration API since it was last imported \(version 4, no import recorded\)/m)
  const store = await createMemoryStore({ file })
  t.after(() => store.close())
  assert.deepEqual((await store.get(200))?.entries, [])
})
