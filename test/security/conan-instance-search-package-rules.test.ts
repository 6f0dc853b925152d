// Conan's instance search (`GET /packages/conan/v1/conans/search?q=`) lists recipe names
// (`name/version@username/channel`) from every project its `q` reaches
// (app/finders/packages/conan/package_finder.rb): with a username, only the project that username
// names; without one, every project the job's user can read. The gate forwarded it as touching no
// single project, so a job learnt the Conan packages of a project that keeps Conan reads from job
// tokens (`read: false`). A search naming a username is now decided as a Conan read of that
// project; one without is refused to job tokens (403 CONAN_SEARCH_UNSCOPED): no lookup lists the
// projects it reads, and the answer cannot be sifted, since a recipe's username need not name its
// project (a project's own Conan API takes any, `_` included).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import type { PackageRules } from '../../src/grants/model.ts'
import { conanSearchOf } from '../../src/projects/lookup.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { requireTool } from '../helpers/require-tool.ts'

const SEARCH = '/api/v4/packages/conan/v1/conans/search'
const job = (token: string): Record<string, string> => ({ 'job-token': token })
const q = (query: string): string => `${SEARCH}?q=${encodeURIComponent(query)}`

// acme/lib (200) lets every acme job in with default permissions (test/helpers/gate.ts).
async function withRules (g: TestGate, rules: PackageRules): Promise<void> {
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, packageRules: rules })
}

const lastDecision = (g: TestGate): Record<string, unknown> | undefined => g.logs.filter(l => l.msg === 'decision').at(-1)

test('GitLab\'s finder splits `q` at `@` and `/`, and a blank username searches every project', (t) => {
  if (!requireTool(t, spawnSync('ruby', ['-e', 'require "active_support/core_ext/object/blank"']).status === 0 ? null : 'ruby with ActiveSupport')) return
  const queries = ['lib*', 'lib/1.0', 'lib/1.0@acme+lib/stable', 'lib/*@acme+lib', 'lib//acme+lib', 'lib/1.0@/stable',
    'lib/1.0@ /stable', 'lib/1.0@\u00a0/x', 'lib/1.0@\u0085/x', 'lib@acme+lib', '/1.0@acme+lib/x', 'lib/1.0@user/stable', 'lib/1.0@*/*', '*', '',
    // `*` in the username: deleted by the releases whose SearchService looks a single package up.
    'lib/1.0@acme+l*ib/stable', 'lib/1.0@*acme+lib*/stable', 'lib/1.0@acme*+lib', 'lib/1.0/acme+l*ib', 'lib/1.0@ac_me+lib/x', 'lib/1.0@*+*/x']
  // What each release looks up: PackageFinder splitting `q` (its parts LIKE-escaped, `*` as `%`),
  // and the SearchService before it, which deleted every `*` and escaped `q` whole, then looked a
  // `q` with `@` up as one package (SinglePackageSearchService) and handed the others to the finder.
  const script = `
    require 'json'; require 'active_support/core_ext/object/blank'
    def like(s) = s.gsub('\\\\') { '\\\\\\\\' }.gsub(/(?=[%_])/) { '\\\\' }
    def finder(q)
      name, version, username, _ = q.split(%r{[@/]}).map { |part| like(part).tr('*', '%') }
      return 'nothing' if !name.present? || (name == '%' && version == '%')
      return 'every_project' unless username.present?
      username.tr('+', '/')
    end
    def single(q)
      name, _version, username, _ = q.split(%r{[@/]})
      # An exact name: no package's is blank.
      !name.present? || username.nil? ? 'nothing' : username.tr('+', '/')
    end
    puts JSON.generate(JSON.parse(STDIN.read).map { |q|
      next ['nothing', 'nothing'] if q == '*'
      sanitized = like(q.delete('*'))
      [finder(q), q.include?('@') ? single(sanitized) : finder(q.end_with?('*') ? sanitized + '%' : sanitized)]
    })`
  const run = spawnSync('ruby', ['-e', script], { input: JSON.stringify(queries), encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  const readings = JSON.parse(run.stdout) as string[][]
  // A path without `/`, or holding `%`, a backslash or `*`, is no project's (LIKE-escaped, or a
  // wildcard the lookup takes as is).
  const findable = (path: string): boolean => path.includes('/') && !/[%\\*]/.test(path)
  queries.forEach((query, i) => {
    const s = conanSearchOf(query)
    const ours = s.kind === 'project_path' ? s.path : s.kind
    const theirs = readings[i]!
    if (theirs.includes('every_project')) return assert.equal(ours, 'every_project', query)
    // Every project a release reads is the one decided (a path none finds may be decided anyway).
    for (const path of theirs.filter(p => p !== 'nothing' && findable(p))) assert.equal(ours, path, `${query}: ${JSON.stringify(theirs)}`)
    if (ours === 'every_project') assert.fail(`${query}: no release reads every project`)
  })
  // The unescaped path of a `*`-free username, as before.
  assert.deepEqual(conanSearchOf('lib/1.0@ac_me+lib/x'), { kind: 'project_path', path: 'ac_me/lib' })
})

test('a job\'s Conan search at the instance level meets the package rules of the projects it reads', async (t) => {
  const g = await startTestGate(t)
  await withRules(g, { conan: { read: false, write: 'maintainer' } })
  // Without a username GitLab lists acme/lib's recipes too, for the project's own job as well.
  for (const token of [TOKENS.web, TOKENS.lib]) {
    for (const query of ['lib*', 'lib', 'lib/1.0', 'lib/1.0@ /stable', 'lib/*@%20/stable']) {
      const res = await send(g.url, 'GET', query.includes('%') ? `${SEARCH}?q=${query}` : q(query), job(token))
      assert.equal(res.status, 403, `${query}: ${res.text}`)
      assert.equal(res.json().code, 'CONAN_SEARCH_UNSCOPED', query)
    }
    // Naming acme/lib: its rule.
    const named = await send(g.url, 'GET', q('lib/*@acme+lib/stable'), job(token))
    assert.equal(named.status, 403, named.text)
    assert.equal(named.json().code, 'PACKAGE_READ_DISABLED')
  }
  // A `q` the gate cannot read for sure: in the body (Rack's wins), twice, or as `q[]`.
  const unsure: Array<[string, Record<string, string>, string | undefined]> = [
    [q('app/*@acme+platform+app/stable'), { 'content-type': 'application/x-www-form-urlencoded' }, 'q=lib*'],
    [`${q('app/*@acme+platform+app/stable')}&q=lib*`, {}, undefined],
    [`${SEARCH}?q[]=lib*`, {}, undefined]
  ]
  for (const [path, headers, body] of unsure) {
    const res = await send(g.url, 'GET', path, { ...job(TOKENS.app), ...headers }, body)
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'CONAN_SEARCH_UNSCOPED', path)
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
  assert.deepEqual([lastDecision(g)?.decision, lastDecision(g)?.stage], ['deny', 'resolve_grants'])

  // What lists nothing, or only projects whose rules allow it, goes on.
  const passed: Array<[string, string, string]> = [
    [q('app/*@acme+platform+app/stable'), TOKENS.app, 'SELF_ACCESS'],
    [q('*'), TOKENS.web, 'NO_PROJECT'],
    [q('lib/1.0@user/stable'), TOKENS.web, 'NO_PROJECT'],
    [q('lib/1.0@*/*'), TOKENS.web, 'NO_PROJECT'],
    // The instance search reads no `id` (search_project is nil there), unlike the recipe routes.
    [`${q('app/*@acme+platform+app/stable')}&id=200`, TOKENS.app, 'SELF_ACCESS']
  ]
  for (const [path, token, reason] of passed) {
    const res = await send(g.url, 'GET', path, job(token))
    assert.equal(res.status, 200, `${path}: ${res.text}`)
    assert.equal(g.seen.at(-1)!.url, path)
    assert.equal(lastDecision(g)?.reason, reason, path)
  }
  // acme/lib once it lets job tokens read Conan packages again.
  await withRules(g, { npm: { read: false, write: 'maintainer' } })
  const open = await send(g.url, 'GET', q('lib/*@acme+lib/stable'), job(TOKENS.web))
  assert.equal(open.status, 200, open.text)
  assert.equal(lastDecision(g)?.reason, 'DEFAULT_PERMISSIONS')
  // A project the job is not allowlisted in: as its own routes.
  const other = await send(g.url, 'GET', q('tools/*@other+tools/stable'), job(TOKENS.web))
  assert.equal(other.status, 403, other.text)
  assert.equal(other.json().code, 'NOT_ALLOWLISTED')
  // Users are GitLab's to decide.
  const user = await send(g.url, 'GET', q('lib*'), { 'private-token': 'glpat-someone' })
  assert.equal(user.status, 200, user.text)
})

test('GATE_UNRESOLVED_PROJECT=defer forwards the search as every group and instance route', async (t) => {
  const g = await startTestGate(t, { GATE_UNRESOLVED_PROJECT: 'defer' })
  await withRules(g, { conan: { read: false, write: 'maintainer' } })
  const res = await send(g.url, 'GET', q('lib*'), job(TOKENS.web))
  assert.equal(res.status, 200, res.text)
  assert.equal(lastDecision(g)?.reason, 'PROJECT_NOT_IN_URL')
})

test('a `*` in the username is decided on the path without it, which GitLab\'s single package search reads', async (t) => {
  // GATE_UNKNOWN_PROJECT=allow passes a path GitLab shows no project at, as `acme/l*ib` is.
  const g = await startTestGate(t, { GATE_UNKNOWN_PROJECT: 'allow' })
  await withRules(g, { conan: { read: false, write: 'maintainer' } })
  for (const query of ['lib/1.0@acme+l*ib/stable', 'lib/1.0@*acme+lib*/stable', 'lib/1.0/acme+l*ib']) {
    const res = await send(g.url, 'GET', q(query), job(TOKENS.web))
    assert.equal(res.status, 403, `${query}: ${res.text}`)
    assert.equal(res.json().code, 'PACKAGE_READ_DISABLED', query)
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})
