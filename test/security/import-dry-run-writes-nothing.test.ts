// Finding: `import-allowlists --dry-run` ("write nothing") opened the store as `serve` does, and
// on a Redis store holding no marker it wrote one (every master's, in a Cluster). A store without
// a marker is new, or lost everything while no gate read it; the marker is how the gate tells
// such a loss from "nothing configured" (src/grants/redis-marker.ts). A dry run, made to see what
// an import would do after Redis came back empty, marked the store as new, silently: the gates
// started after it found a marker and decided on the empty store without the warning `serve`
// gives when it marks one itself, package rules and every change made through the gate gone.
// The import proper marked it without that warning too.
//
// Now a dry run marks nothing (it compares each project with an allowlist never configured, and
// says why), and the import says, as `serve` does, when it marked a store that held no marker.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runCli } from '../../src/cli/main.ts'
import { sendJson } from '../helpers/http.ts'
import { startImportGitlab } from '../helpers/import-gitlab.ts'
import { startRedis } from '../helpers/redis.ts'

const SERVICE_TOKEN = 'glpat-import-service-token-0004'

test('import --dry-run writes nothing to a Redis store that holds no marker; the import says it marked one', async t => {
  // acme/lib (200) allowlists acme/platform/app (100) with default permissions.
  const gitlab = await startImportGitlab(t, SERVICE_TOKEN, (path, body, res) => {
    if (path === '/api/v4/projects/acme%2Flib') return sendJson(res, { id: 200, path_with_namespace: 'acme/lib' })
    if (path === '/api/v4/projects/200/job_token_scope') return sendJson(res, { inbound_enabled: true, outbound_enabled: false })
    if (path === '/api/v4/projects/200/job_token_scope/allowlist') {
      return sendJson(res, [{ id: 200, path_with_namespace: 'acme/lib' }, { id: 100, path_with_namespace: 'acme/platform/app' }], { 'x-next-page': '' })
    }
    if (path === '/api/v4/projects/200/job_token_scope/groups_allowlist') return sendJson(res, [], { 'x-next-page': '' })
    if (path === '/api/graphql') {
      return sendJson(res, { errors: [{ message: "Field 'ciJobTokenScopeAllowlist' doesn't exist on type 'Project'" }] })
    }
  })
  const redis = await startRedis(t)
  const env = { GATE_UPSTREAM_URL: gitlab, GATE_SERVICE_TOKEN: SERVICE_TOKEN, GATE_REDIS_URL: redis.url }
  const cli = async (...argv: string[]): Promise<{ code: number, out: string, err: string }> => {
    let out = ''
    let err = ''
    const code = await runCli(['import-allowlists', '--from-gitlab', '--project', 'acme/lib', ...argv], { out: s => { out += s }, err: s => { err += s } }, env)
    return { code, out, err }
  }

  const dry = await cli('--dry-run')
  assert.equal(dry.code, 0, dry.out + dry.err)
  assert.equal(redis.cli('DBSIZE').trim(), '0', `the dry run wrote keys: ${redis.cli('KEYS', '*')}`)
  assert.match(dry.out, /holds no marker/)
  assert.match(dry.out, /^acme\/lib \(200\): would be written; 1 entries/m)
  assert.match(dry.out, /^ {2}project 100 acme\/platform\/app: default permissions$/m)

  // The import marks the store, and says so.
  const real = await cli()
  assert.equal(real.code, 0, real.out + real.err)
  assert.match(real.err, /"level":40.*held no marker/)
  assert.match(real.out, /^acme\/lib \(200\): written/m)
  // A dry run on the store as it is now reads it.
  const again = await cli('--dry-run')
  assert.equal(again.code, 0, again.out + again.err)
  assert.doesNotMatch(again.out, /holds no marker/)
  assert.match(again.out, /^acme\/lib \(200\): unchanged/m)
  assert.doesNotMatch((await cli()).err, /held no marker/)
})
