// Finding (availability): GitLab's Grape takes the answer's format from the raw path's extension
// before Accept or `?format=`, and GitLab's API declares text/plain besides JSON. A project, group
// or npm package whose path ends in `.txt` (legal in GitLab) made the gate's own lookup URL end
// in `.txt` too: `GET /api/v4/projects/acme%2Flib.txt` is project acme/lib.txt answered as text,
// which no lookup reads, so every job-token request naming it by path failed with
// PROJECT_LOOKUP_FAILED (502) and its configuration could not be read by path. The gate escapes
// the dots of what it puts in a lookup's path (`acme%2Flib%2Etxt`), which Grape takes for no
// extension and still decodes to acme/lib.txt. The fake GitLab answers such paths as Grape does
// (grapeFormat), checked against Grape itself below when Ruby has it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { TOKENS, type TestGate } from '../helpers/gate.ts'
import { grapeFormat } from '../helpers/fake-gitlab.ts'
import { grapeUnavailable } from '../helpers/grape-oracle.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, pkg, projectsGate } from '../projects/world.ts'

const upload = (id: string): string => `/api/v4/projects/${id}/packages/generic/tool/1.0/tool.bin`

/** acme/lib (200) renamed in GitLab to acme/lib.txt. */
function renamed (g: TestGate): void {
  const project = g.gitlab.projects.get(200)!
  g.gitlab.projects.set(200, { ...project, pathWithNamespace: 'acme/lib.txt' })
}

test('Grape answers a path ending in .txt as text, and one whose dot is escaped as JSON with the same id', async t => {
  const missing = grapeUnavailable()
  if (missing !== null) {
    t.skip(missing)
    return
  }
  // GitLab's API as Grape sees it: JSON and text declared, a `[^/]+` id, npm's `format: false`.
  const script = String.raw`
    require 'json'; require 'grape'; require 'rack/mock'
    class Api < Grape::API
      format :json
      content_type :json, 'application/json'
      content_type :txt, 'text/plain'
      prefix :api
      version 'v4', using: :path
      get('projects/:id', requirements: { id: %r{[^/]+} }) { { id: params[:id] } }
      get('groups/:id', requirements: { id: %r{[^/]+} }) { { id: params[:id] } }
      get('packages/npm/*package_name', format: false, requirements: { package_name: %r{(?:@[^/]+/)?[^/]+} }) { { id: params[:package_name] } }
    end
    out = ARGV.map do |path|
      status, headers, body = Api.call(Rack::MockRequest.env_for(path, 'HTTP_ACCEPT' => 'application/json'))
      text = +''; body.each { |part| text << part }
      { path: path, status: status, type: headers['Content-Type'], id: (JSON.parse(text)['id'] rescue nil) }
    end
    puts JSON.generate(out)`
  const cases: Array<[string, 'json' | 'txt', string]> = [
    ['/api/v4/projects/acme%2Flib.txt', 'txt', 'acme/lib.txt'],
    ['/api/v4/projects/acme%2Flib.txt?format=json', 'txt', 'acme/lib.txt'],
    ['/api/v4/projects/acme%2Flib%2Etxt', 'json', 'acme/lib.txt'],
    ['/api/v4/projects/acme%2Flib.json', 'json', 'acme/lib.json'],
    ['/api/v4/projects/acme%2Flib.xml', 'json', 'acme/lib.xml'],
    ['/api/v4/projects/acme%2Flib%2Exml', 'json', 'acme/lib.xml'],
    ['/api/v4/projects/acme.txt%2Flib', 'json', 'acme.txt/lib'],
    ['/api/v4/projects/200', 'json', '200'],
    ['/api/v4/groups/other.txt?with_projects=false', 'txt', 'other.txt'],
    ['/api/v4/groups/other%2Etxt?with_projects=false', 'json', 'other.txt'],
    ['/api/v4/packages/npm/@acme%2Fnotes.txt', 'txt', '@acme/notes.txt'],
    ['/api/v4/packages/npm/@acme%2Fnotes%2Etxt', 'json', '@acme/notes.txt']
  ]
  const run = spawnSync('ruby', ['-e', script, ...cases.map(c => c[0])], { encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  const answers = JSON.parse(run.stdout) as Array<{ path: string, status: number, type: string, id: string | null }>
  for (const [i, [path, format, id]] of cases.entries()) {
    const answer = answers[i]!
    assert.equal(answer.status, 200, path)
    assert.equal(answer.type, format === 'txt' ? 'text/plain' : 'application/json', path)
    if (format === 'json') assert.equal(answer.id, id, path)
    assert.equal(grapeFormat(path), format, `the fake GitLab answers ${path} as Grape does`)
  }
})

test('a job token naming its project by a path that ends in .txt is decided, not failed', async t => {
  const g = await adminGate(t, { GATE_LOG_RAW_PATH: 'true' })
  renamed(g)
  for (const id of ['acme%2Flib.txt', 'ACME%2FLib.txt']) {
    const own = await send(g.url, 'PUT', upload(id), { 'job-token': TOKENS.lib }, 'bytes')
    assert.equal(own.status, 200, `own job by path ${id}: ${own.text}`)
    assert.equal((await decisionOf(g, upload(id))).reason, 'SELF_ACCESS')
    const read = await send(g.url, 'GET', upload(id), { 'job-token': TOKENS.lib })
    assert.equal(read.status, 200, `own job reads by path ${id}: ${read.text}`)
  }
  // Another project's job is held to acme/lib.txt's allowlist, which names no other group.
  const before = g.seen.length
  const stranger = await send(g.url, 'PUT', upload('acme%2Flib.txt'), { 'job-token': TOKENS.tools }, 'bytes')
  assert.equal(stranger.status, 403, stranger.text)
  assert.equal(stranger.json().code, 'NOT_ALLOWLISTED')
  assert.equal(g.seen.length, before, 'the refused write did not reach the upstream')
  // The lookups asked GitLab with the dot escaped, never with a path ending in `.txt`.
  const asked = g.gitlab.targets.filter(target => /^\/api\/v4\/projects\/[^/?]*lib/i.test(target))
  assert.ok(asked.length > 0, 'the project was looked up by path')
  for (const target of asked) assert.equal(grapeFormat(target), 'json', target)
})

test('the configuration API finds a project by a path that ends in .txt', async t => {
  const g = await adminGate(t)
  renamed(g)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/acme%2Flib.txt/job_token_permissions',
    { 'content-type': 'application/json', 'private-token': ADMIN }, JSON.stringify({ package_registry: { generic: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, `operator by path: ${patch.text}`)
  const byPath = await send(g.url, 'GET', '/api/v4/projects/acme%2Flib.txt/job_token_permissions', { 'private-token': USERS.maintainer })
  assert.equal(byPath.status, 200, `Maintainer by path: ${byPath.text}`)
  assert.equal(byPath.json().package_registry.generic.write, 'maintainer')
  // The rule holds where a Developer names the project by that path.
  const developer = await send(g.url, 'PUT', upload('acme%2Flib.txt'), { 'private-token': USERS.developer }, 'bytes')
  assert.equal(developer.status, 403, developer.text)
  assert.equal(developer.json().code, 'PACKAGE_MAINTAINER_ONLY')
})

test('npm metadata of a name that ends in .txt is decided on its project', async t => {
  const g = await projectsGate(t)
  // In acme/lib (200), whose allowlist names the acme group and acme/platform/app only.
  g.gitlab.packages.push(pkg('@acme/notes.txt', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'))
  for (const path of ['/api/v4/packages/npm/@acme%2fnotes.txt', '/api/v4/groups/acme/-/packages/npm/@acme%2fnotes.txt']) {
    const own = await send(g.url, 'GET', path, { 'job-token': TOKENS.lib })
    assert.equal(own.status, 200, `${path}: ${own.text}`)
    assert.equal((await decisionOf(g, path)).reason, 'SELF_ACCESS', path)
    const stranger = await send(g.url, 'GET', path, { 'job-token': TOKENS.tools })
    assert.equal(stranger.status, 403, `${path}: ${stranger.text}`)
    assert.equal(stranger.json().code, 'NOT_ALLOWLISTED', path)
  }
  assert.equal(forwarded(g, '/api/v4/packages/npm/@acme%2fnotes.txt'), 1)
})
