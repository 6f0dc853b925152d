// Finding: `import-allowlists` reads each project's allowlist by id over REST, and its entries'
// fine-grained permissions over GraphQL, by the full path the project had when the projects were
// listed (every project is listed first, then read: minutes apart on a large instance). It never
// checked which project GraphQL answered for. A project renamed meanwhile, whose old path another
// project took, got that other project's permissions: an entry GitLab limits to read_packages was
// imported with default permissions where the other project lists the same target so, and its
// jobs could then do anything their user may in the project.
//
// Now GraphQL's answer must be the project read over REST (its `id`); another one stops the
// import, as any other change while reading does, and nothing is written.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from '../../src/cli/main.ts'
import { sendJson } from '../helpers/http.ts'
import { startImportGitlab } from '../helpers/import-gitlab.ts'

const SERVICE_TOKEN = 'glpat-import-service-token-0002'

test('import: GraphQL answering for another project at the listed path stops the import', async t => {
  // acme/lib (200) allowlists acme/platform/app (100) with read_packages only. Since it was
  // listed, it moved to acme/lib-old, and project 900, which allowlists 100 with default
  // permissions, took acme/lib.
  const gitlab = await startImportGitlab(t, SERVICE_TOKEN, (path, text, res) => {
    if (path === '/api/v4/projects/acme%2Flib') return sendJson(res, { id: 200, path_with_namespace: 'acme/lib' })
    if (path === '/api/v4/projects/200/job_token_scope') return sendJson(res, { inbound_enabled: true, outbound_enabled: false })
    if (path === '/api/v4/projects/200/job_token_scope/allowlist') {
      return sendJson(res, [{ id: 200, path_with_namespace: 'acme/lib-old' }, { id: 100, path_with_namespace: 'acme/platform/app' }], { 'x-next-page': '' })
    }
    if (path === '/api/v4/projects/200/job_token_scope/groups_allowlist') return sendJson(res, [], { 'x-next-page': '' })
    if (path === '/api/graphql') {
      const request = JSON.parse(text) as { query: string, variables: { fullPath: string } }
      assert.equal(request.variables.fullPath, 'acme/lib')
      const connection = /projectsAllowlist\(/.test(request.query) ? 'projectsAllowlist' : 'groupsAllowlist'
      const nodes = connection === 'projectsAllowlist'
        ? [{ direction: 'inbound', defaultPermissions: true, jobTokenPolicies: [], createdAt: '2025-03-01T10:00:00Z', addedBy: null, target: { id: '100', fullPath: 'acme/platform/app' } }]
        : []
      return sendJson(res, { data: { project: { id: 'gid://gitlab/Project/900', ciJobTokenScopeAllowlist: { [connection]: { nodes, pageInfo: { hasNextPage: false, endCursor: null } } } } } })
    }
  })
  const dir = mkdtempSync(join(tmpdir(), 'jtg-import-other-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'grants.json')

  let out = ''
  let err = ''
  const env = { GATE_UPSTREAM_URL: gitlab, GATE_SERVICE_TOKEN: SERVICE_TOKEN, GATE_STATE_FILE: file }
  const code = await runCli(['import-allowlists', '--from-gitlab', '--project', 'acme/lib'], { out: s => { out += s }, err: s => { err += s } }, env)

  const stored = existsSync(file) ? readFileSync(file, 'utf8') : ''
  assert.ok(!/"defaultPermissions": true/.test(stored), `project 900's default permissions were imported into acme/lib: ${stored}`)
  assert.notEqual(code, 0, out + err)
  assert.match(err, /changed while it was read|another project/, err)
})
