// A project's Conan search (`GET /projects/:id/packages/conan/v1/conans/search?q=`, and v2's) was
// decided on `:id` alone, as reading that project only. Newer GitLab does (PackageFinder with the
// project), but the releases whose SearchService looks a `q` holding `@` up as one package
// (SinglePackageSearchService, after deleting every `*`) read the project the username names,
// whatever the URL's: a job's search from its own project, self access, listed the recipe of a
// project that keeps Conan reads from job tokens (`read: false`), or that does not allowlist the
// job. Such a username must now name the URL's project (or none), and a `q` the gate cannot read
// for sure is refused (403 CONAN_SEARCH_OTHER_PROJECT).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import type { PackageRules } from '../../src/grants/model.ts'
import { conanSingleSearchPathOf } from '../../src/projects/lookup.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { requireTool } from '../helpers/require-tool.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
// acme/platform/app (100) is TOKENS.app's own project; acme/lib (200) keeps Conan reads below.
const search = (id: string, query: string, version = 'v1'): string => `/api/v4/projects/${id}/packages/conan/${version}/conans/search?q=${encodeURIComponent(query)}`

async function withRules (g: TestGate, rules: PackageRules): Promise<void> {
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, packageRules: rules })
}

test('the single package search reads the project of the username, `*` deleted', (t) => {
  if (!requireTool(t, spawnSync('ruby', ['-e', 'require "active_support/core_ext/object/blank"']).status === 0 ? null : 'ruby with ActiveSupport')) return
  const queries = ['lib/1.0@acme+lib/stable', 'lib/1.0@acme+l*ib/stable', 'l*b/*@acme+lib/*', 'lib/1.0/acme+lib', 'lib*', 'lib/1.0@_/_',
    '/1.0@acme+lib/x', ' /1.0@acme+lib/x', 'lib/1.0@/x', 'lib@acme+lib', 'lib/1.0@acme/x', '*', 'lib/1.0@acme+lib']
  // SearchService (those releases): `q` with `@` -> SinglePackageSearchService(sanitize_sql_like(q.delete('*'))),
  // which splits it, finds the username's project and the package of exactly that name (none is blank).
  const script = `
    require 'json'; require 'active_support/core_ext/object/blank'
    puts JSON.generate(JSON.parse(STDIN.read).map { |q|
      next nil if q == '*' || !q.include?('@')
      name, _version, username, _ = q.delete('*').gsub(/(?=[%_])/) { '\\\\' }.split(%r{[@/]})
      next nil if !name.present? || username.nil? || !username.include?('+')
      username.tr('+', '/')
    })`
  const run = spawnSync('ruby', ['-e', script], { input: JSON.stringify(queries), encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  assert.deepEqual(queries.map(conanSingleSearchPathOf), JSON.parse(run.stdout))
})

test('a job\'s search of its own project\'s remote cannot name another project\'s recipe', async (t) => {
  const g = await startTestGate(t)
  await withRules(g, { conan: { read: false, write: 'maintainer' } })
  const refused: Array<[string, Record<string, string>?, string?]> = [
    [search('100', 'lib/1.0@acme+lib/stable')],
    [search('100', 'lib/1.0@acme+lib/stable', 'v2')],
    [search('acme%2Fplatform%2Fapp', 'lib/1.0@acme+lib/stable')],
    [search('100', 'lib/1.0@acme+l*ib/stable')],
    // A project the gate is shown none at may be one its service token does not see.
    [search('100', 'lib/1.0@acme+nosuch/stable')],
    // A `q` the gate cannot read for sure: repeated, or in a form body, which Rack merges over the URL's.
    [`${search('100', 'lib/1.0@acme+platform+app/stable')}&q=${encodeURIComponent('lib/1.0@acme+lib/stable')}`],
    [search('100', 'lib/1.0@acme+platform+app/stable'), { 'content-type': 'application/x-www-form-urlencoded' }, 'q=lib%2F1.0%40acme%2Blib%2Fstable']
  ]
  for (const [path, headers, body] of refused) {
    const res = await send(g.url, 'GET', path, { ...job(TOKENS.app), ...headers }, body)
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'CONAN_SEARCH_OTHER_PROJECT', path)
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
  // The project's own username (any case), none, or no full reference: the project's own search.
  for (const query of ['lib/1.0@acme+platform+app/stable', 'lib/1.0@ACME+Platform+App/stable', 'lib/1.0@_/_', 'lib*', 'lib/1.0']) {
    const res = await send(g.url, 'GET', search('100', query), job(TOKENS.app))
    assert.equal(res.status, 200, `${query}: ${res.text}`)
  }
  // Searching acme/lib's own remote is decided on acme/lib, as before.
  const lib = await send(g.url, 'GET', search('200', 'lib/1.0@acme+lib/stable'), job(TOKENS.app))
  assert.equal(lib.json().code, 'PACKAGE_READ_DISABLED')
})
