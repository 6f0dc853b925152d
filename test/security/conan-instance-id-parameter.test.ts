// Conan's instance API (/packages/conan/v1/...) finds its project by `package_scope`
// (lib/api/helpers/packages/conan/api_helpers.rb): `params[:id].present? ? :project : :instance`,
// and in the project scope `user_project`, the project `params[:id]` names. These paths hold no
// `:id`, so an `id` in the query or the body, which Grape merges into params, is that parameter.
// The gate looked the project up by the package username alone: `_` (no project) was forwarded
// undecided, and the job's own project as username was self access, while GitLab acted on the
// project `id` named (an upload into a project whose allowlist does not name the job). A user's
// write met the package rules of the username's project, not of the one GitLab wrote to.
//
// Now a request to these routes that may carry an `id` is refused (403 CONAN_PROJECT_PARAMETER).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { TOKENS } from '../helpers/gate.ts'
import { USERS } from '../helpers/admin-gate.ts'
import { grapeUnavailable } from '../helpers/grape-oracle.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, projectsGate } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const FILES = '/api/v4/packages/conan/v1/files/pkg/1.0'
const CONANS = '/api/v4/packages/conan/v1/conans/pkg/1.0'
const upload = (user: string): string => `${FILES}/${user}/stable/0/export/conanfile.py`

test('Grape reads a query or body `id` on an instance path as params[:id], and the path\'s on a project path', async (t) => {
  if (!requireTool(t, grapeUnavailable())) return
  const script = `
    require 'grape'; require 'rack/mock'; require 'json'
    class Api < Grape::API
      format :json
      namespace('packages/conan/v1/conans/:package_name/:package_version/:package_username/:package_channel') { get('download_urls') { { id: params[:id] } }; post('upload_urls') { { id: params[:id] } } }
      namespace('projects/:id/packages/conan/v1/conans/:package_name/:package_version/:package_username/:package_channel') { get('download_urls') { { id: params[:id] } } }
    end
    def ask(method, path, opts = {})
      _, _, body = Api.call(Rack::MockRequest.env_for(path, { method: method }.merge(opts)))
      JSON.parse(body.join)['id']
    end
    puts JSON.generate([
      ask('GET', '/packages/conan/v1/conans/pkg/1/_/_/download_urls?id=acme%2Fregistry'),
      ask('GET', '/packages/conan/v1/conans/pkg/1/_/_/download_urls?%5Bid%5D=700'),
      ask('GET', '/packages/conan/v1/conans/pkg/1/_/_/download_urls', input: 'id=700', 'CONTENT_TYPE' => 'application/x-www-form-urlencoded'),
      ask('POST', '/packages/conan/v1/conans/pkg/1/_/_/upload_urls', input: '{"id":"700","conanfile.py":1}', 'CONTENT_TYPE' => 'application/json'),
      ask('GET', '/projects/100/packages/conan/v1/conans/pkg/1/_/_/download_urls?id=700')
    ])`
  const run = spawnSync('ruby', ['-e', script], { encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  assert.deepEqual(JSON.parse(run.stdout), ['acme/registry', '700', '700', '700', '100'])
})

test('a job token on Conan\'s instance API with an `id` parameter is refused, wherever the `id` is', async (t) => {
  const g = await projectsGate(t)
  // The app job (project 100) may not write to acme/registry (700); `_` names no project and its
  // own project is self access: each with an `id` naming 700 would write there.
  const cases: ReadonlyArray<readonly [string, string, Record<string, string>, string | undefined]> = [
    ['PUT', `${upload('_')}?id=acme%2Fregistry`, {}, 'recipe'],
    ['PUT', `${upload('acme+platform+app')}?id=700`, {}, 'recipe'],
    ['PUT', `${upload('acme+platform+app')}?%69d=700`, {}, 'recipe'],
    ['PUT', `${upload('acme+platform+app')}?x=1;id[]=700`, {}, 'recipe'],
    ['PUT', `${upload('acme+platform+app')}?%5Bid%5D=700`, {}, 'recipe'],
    ['GET', `${CONANS}/acme+platform+app/stable/download_urls`, { 'content-type': 'application/x-www-form-urlencoded' }, 'id=700'],
    ['POST', `${CONANS}/acme+platform+app/stable/upload_urls`, { 'content-type': 'application/json' }, '{"conanfile.py": 24, "id": 700}'],
    ['DELETE', `${CONANS}/_/_?id=700`, {}, undefined]
  ]
  for (const [method, path, headers, body] of cases) {
    const answer = await send(g.url, method, path, { ...job(TOKENS.app), ...headers }, body)
    assert.equal(answer.status, 403, `${method} ${path}: ${answer.text}`)
    assert.equal(answer.json().code, 'CONAN_PROJECT_PARAMETER', `${method} ${path}`)
  }
  // A JSON body too large to read before deciding: its names are not known.
  const large = JSON.stringify({ 'conanfile.py': 24, padding: 'x'.repeat(100_000) })
  const streamed = await send(g.url, 'POST', `${CONANS}/acme+platform+app/stable/upload_urls`, { ...job(TOKENS.app), 'content-type': 'application/json' }, large)
  assert.equal(streamed.json().code, 'CONAN_PROJECT_PARAMETER')
  assert.deepEqual(g.seen.map(s => `${s.method} ${s.url}`), [], 'nothing reached GitLab')
  const log = await decisionOf(g, `${CONANS}/_/_`)
  assert.deepEqual([log.decision, log.reason, log.stage], ['deny', 'CONAN_PROJECT_PARAMETER', 'resolve_grants'])
})

test('without an `id` Conan\'s instance API is decided as before, and a project route\'s `id` is its path\'s', async (t) => {
  const g = await projectsGate(t)
  // The client's own requests: an untyped upload, the upload URLs' JSON, a download.
  assert.equal((await send(g.url, 'PUT', upload('acme+platform+app'), job(TOKENS.app), 'recipe')).status, 200)
  assert.equal((await decisionOf(g, upload('acme+platform+app'))).reason, 'SELF_ACCESS')
  const urls = `${CONANS}/acme+platform+app/stable/upload_urls`
  assert.equal((await send(g.url, 'POST', urls, { ...job(TOKENS.app), 'content-type': 'application/json' }, '{"conanfile.py": 24, "conanmanifest.txt": 40}')).status, 200)
  // Blank, or a name that is not `id` to Rack.
  assert.equal((await send(g.url, 'GET', `${CONANS}/acme+platform+app/stable/download_urls?ids=700&xid=700`, job(TOKENS.app))).status, 200)
  // Refused as before where the username names a project the job may not write to.
  const refused = await send(g.url, 'PUT', upload('acme+registry'), job(TOKENS.app), 'recipe')
  assert.equal(refused.json().code, 'NOT_ALLOWLISTED')
  // Grape's path parameter wins over the query's on project routes: the project is the path's.
  const project = '/api/v4/projects/100/packages/conan/v1/files/pkg/1.0/_/_/0/export/conanfile.py?id=700'
  assert.equal((await send(g.url, 'PUT', project, job(TOKENS.app), 'recipe')).status, 200)
})

test('a user\'s Conan write through the instance API with an `id` is refused: GitLab writes to that project', async (t) => {
  const g = await projectsGate(t)
  // acme/lib (200) keeps Conan writes to Maintainers; the Developer also develops acme/platform/app (100).
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, packageRules: { conan: { write: 'maintainer' } } })
  const path = `${upload('acme+platform+app')}?id=acme%2Flib`
  const answer = await send(g.url, 'PUT', path, { 'private-token': USERS.developer }, 'recipe')
  assert.equal(answer.status, 403, answer.text)
  assert.equal(answer.json().code, 'CONAN_PROJECT_PARAMETER')
  assert.equal(g.seen.length, 0)
  // Without it, the username's project decides, which keeps no rule.
  assert.equal((await send(g.url, 'PUT', upload('acme+platform+app'), { 'private-token': USERS.developer }, 'recipe')).status, 200)
})
