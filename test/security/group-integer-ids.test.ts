// GitLab's PyPI and NuGet group APIs declare the group `:id` `types: [Integer, String]`
// (lib/api/pypi_packages.rb, lib/api/nuget_group_packages.rb): Grape coerces it with Ruby's
// `Integer(value, 10)` first, so `+10`, `1_0`, `%2010` and `0d10` are group 10 there and GitLab
// serves group 10's packages. The gate asked GitLab's groups API, whose `:id` is a String that
// find_group reads as an id only when it is all digits, for the projects under `+10`: none, so
// the read was deferred unchecked and a project's `read: false` for PyPI or NuGet did not hold
// through such a spelling of its group's id.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import type { PackageRules } from '../../src/grants/model.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { grapeUnavailable } from '../helpers/grape-oracle.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { send } from '../helpers/http.ts'

const SHA = 'a'.repeat(64)
const job = (token: string): Record<string, string> => ({ 'job-token': token })

// acme/lib (200) is in group acme (10).
async function withRules (g: TestGate, rules: PackageRules): Promise<void> {
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, packageRules: rules })
}

test('Grape reads an Integer-first group `:id` as Ruby\'s Integer(value, 10), a String-first one as written', async t => {
  if (!requireTool(t, grapeUnavailable())) return
  const script = `
    require 'grape'; require 'rack/mock'; require 'json'
    class Api < Grape::API
      format :json
      params { requires :id, types: [Integer, String] }
      resource(:groups, requirements: { id: %r{[^/]+} }) { namespace(':id/-/packages/pypi') { get('simple') { { id: params[:id] } } } }
      params { requires :id, types: [String, Integer] }
      resource(:group, requirements: { id: %r{[^/]+} }) { namespace(':id/-/packages/composer') { get('packages') { { id: params[:id] } } } }
    end
    ask = ->(path) { JSON.parse(Api.call(Rack::MockRequest.env_for(path))[2].join)['id'] }
    puts JSON.generate(%w[+10 1_0 %2010 0d10 acme].map { |id| ask.("/groups/#{id}/-/packages/pypi/simple") } + [ask.('/group/+10/-/packages/composer/packages')])`
  const run = spawnSync('ruby', ['-e', script], { encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  assert.deepEqual(JSON.parse(run.stdout), [10, 10, 10, 10, 'acme', '+10'])
})

test('a group id spelled as Ruby reads a number is that group for the package rules of group reads', async t => {
  const g = await startTestGate(t)
  await withRules(g, { pypi: { read: false, write: 'maintainer' }, nuget: { read: false, write: 'maintainer' }, composer: { read: false, write: 'maintainer' } })
  const refused = [
    '/api/v4/groups/+10/-/packages/pypi/simple',
    '/api/v4/groups/1_0/-/packages/pypi/simple/lib',
    `/api/v4/groups/%2010/-/packages/pypi/files/${SHA}/lib-1.0.tar.gz`,
    '/api/v4/groups/0d10/-/packages/pypi/simple',
    '/api/v4/groups/+10/-/packages/nuget/query',
    '/api/v4/groups/+10/-/packages/nuget/metadata/lib/index',
    // Composer's `:id` is String-first (a top-level group may be named `1_0`): both are checked.
    '/api/v4/group/1_0/-/packages/composer/packages'
  ]
  for (const path of refused) {
    const res = await send(g.url, 'GET', path, job(TOKENS.web))
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'PACKAGE_READ_DISABLED', path)
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')

  // A group whose projects keep nothing from job tokens is deferred as before.
  const res = await send(g.url, 'GET', '/api/v4/groups/+11/-/packages/pypi/simple', job(TOKENS.web))
  assert.equal(res.status, 200, res.text)
  assert.equal(g.seen.at(-1)!.url, '/api/v4/groups/+11/-/packages/pypi/simple')
})
