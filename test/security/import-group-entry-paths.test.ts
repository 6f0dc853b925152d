// Finding: `import-allowlists` took a group entry's path from REST's `groups_allowlist`, whose
// entity (lib/api/entities/basic_group_details.rb: id, web_url, name) has no `full_path`. Every
// imported group entry was stored without its path, though GraphQL's node, found by the same id,
// names it: the allowlist's REST listing showed group entries with no `full_path`, GraphQL's
// views `fullPath: null`, the least-privilege report no `target_path`, so a Maintainer reviewing
// an imported allowlist could not tell which group each entry lets in.
//
// Now a group entry keeps the path GraphQL gives the node of that id.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { runCli } from '../../src/cli/main.ts'
import { loadConfig } from '../../src/config.ts'
import { createStoreFromConfig } from '../../src/gate/deps.ts'
import { createGate } from '../../src/gate/server.ts'
import { createJobResolver } from '../../src/identity/resolver.ts'
import { send, sendJson } from '../helpers/http.ts'
import { startImportGitlab } from '../helpers/import-gitlab.ts'

const SERVICE_TOKEN = 'glpat-import-service-token-0003'
const ADMIN_TOKEN = 'gate-operator-token-import-paths'

test('import: a group entry keeps the full path GraphQL gives it, which REST does not', async t => {
  // acme/lib (200) allowlists the group acme/platform (11) with read_packages, and other (20).
  const gitlab = await startImportGitlab(t, SERVICE_TOKEN, (path, text, res) => {
    if (path === '/api/v4/projects/acme%2Flib' || path === '/api/v4/projects/200') {
      return sendJson(res, { id: 200, path_with_namespace: 'acme/lib', namespace: { id: 10, kind: 'group', full_path: 'acme', parent_id: null } })
    }
    if (path === '/api/v4/projects/200/job_token_scope') return sendJson(res, { inbound_enabled: true, outbound_enabled: false })
    if (path === '/api/v4/projects/200/job_token_scope/allowlist') {
      return sendJson(res, [{ id: 200, name: 'lib', path_with_namespace: 'acme/lib' }], { 'x-next-page': '' })
    }
    // GitLab's BasicGroupDetails: no full_path.
    if (path === '/api/v4/projects/200/job_token_scope/groups_allowlist') {
      return sendJson(res, [
        { id: 11, web_url: 'http://gitlab.example.com/groups/acme/platform', name: 'platform' },
        { id: 20, web_url: 'http://gitlab.example.com/groups/other', name: 'other' }
      ], { 'x-next-page': '' })
    }
    if (path === '/api/graphql') {
      const request = JSON.parse(text) as { query: string }
      const connection = /projectsAllowlist\(/.test(request.query) ? 'projectsAllowlist' : 'groupsAllowlist'
      const nodes = connection === 'projectsAllowlist'
        ? []
        : [
            { direction: 'inbound', defaultPermissions: false, jobTokenPolicies: ['READ_PACKAGES'], createdAt: '2025-03-01T10:00:00Z', addedBy: null, target: { id: 'gid://gitlab/Group/11', fullPath: 'acme/platform' } },
            { direction: 'inbound', defaultPermissions: true, jobTokenPolicies: [], createdAt: '2025-03-01T10:00:00Z', addedBy: null, target: { id: 'gid://gitlab/Group/20', fullPath: 'other' } }
          ]
      return sendJson(res, { data: { project: { id: 'gid://gitlab/Project/200', ciJobTokenScopeAllowlist: { [connection]: { nodes, pageInfo: { hasNextPage: false, endCursor: null } } } } } })
    }
  })
  const dir = mkdtempSync(join(tmpdir(), 'jtg-import-group-paths-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const upstream = gitlab
  const env = { GATE_UPSTREAM_URL: upstream, GATE_SERVICE_TOKEN: SERVICE_TOKEN, GATE_STATE_FILE: join(dir, 'grants.json') }

  let out = ''
  let err = ''
  const code = await runCli(['import-allowlists', '--from-gitlab', '--project', 'acme/lib'], { out: s => { out += s }, err: s => { err += s } }, env)
  assert.equal(code, 0, out + err)

  // The allowlist as a gate on that store lists it.
  const config = loadConfig({ ...env, GATE_ADMIN_TOKEN: ADMIN_TOKEN, GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0', GATE_DRAIN_TIMEOUT_MS: '1000' })
  const gate = createGate(config, { store: await createStoreFromConfig(config), resolver: createJobResolver({ upstream, serviceToken: SERVICE_TOKEN }), logger: pino({ level: 'silent' }) })
  await gate.listen()
  t.after(() => gate.close(0))
  const res = await send(`http://127.0.0.1:${gate.address().port}`, 'GET', '/api/v4/projects/200/job_token_scope/groups_allowlist', { 'private-token': ADMIN_TOKEN })
  assert.equal(res.status, 200, res.text)
  const listed = (res.json() as Array<Record<string, unknown>>).map(e => [e.id, e.full_path, e.default_permissions, e.job_token_policies])
  assert.deepEqual(listed, [[11, 'acme/platform', false, ['read_packages']], [20, 'other', true, []]])
})
