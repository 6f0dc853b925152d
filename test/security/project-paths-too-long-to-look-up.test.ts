// A full path over 2048 characters was never looked up (src/grants/model.ts, mayNameProject) and
// taken for "no project": with GATE_UNKNOWN_PROJECT=allow a job token's Conan search naming such
// a username, a project's own search naming one, or a `/projects/:id` route by such a path passed
// undecided, and users' package writes there met no package rule whatever the setting. GitLab's
// full paths go further (20 nested groups and a project, each path up to 255 characters: Namespace
// URL_MAX_LENGTH, NUMBER_OF_ANCESTORS_ALLOWED), and its Conan search takes a `q` of any length, so
// GitLab acts on such a project. They are refused now: 403 PROJECT_PATH_TOO_LONG.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gateWithPackageRule, USERS } from '../helpers/admin-gate.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

// acme/ and eleven nested groups of 200 characters, then lib: 2,420 characters, a path GitLab can hold.
const LONG = ['acme', ...Array.from({ length: 11 }, (_, i) => `g${i}`.padEnd(200, 'x')), 'lib'].join('/')
const username = LONG.replaceAll('/', '+')
const search = (prefix: string, query: string): string => `${prefix}/packages/conan/v1/conans/search?q=${encodeURIComponent(query)}`

test('a job token naming a full path too long to look up is refused, whatever GATE_UNKNOWN_PROJECT says', async (t) => {
  assert.ok(LONG.length > 2048 && LONG.length < 4096)
  for (const unknownProject of ['allow', 'empty_allowlist']) {
    const g = await startTestGate(t, { GATE_UNKNOWN_PROJECT: unknownProject })
    const requests: ReadonlyArray<readonly [string, string]> = [
      // The instance search reads the project its username names.
      [search('/api/v4', `lib/1.0@${username}/stable`), TOKENS.web],
      [search('/api/v4', `lib*/*@${username}`), TOKENS.web],
      // Some releases answer a project's own search (here the job's own, self access) from it.
      [search('/api/v4/projects/100', `lib/1.0@${username}/stable`), TOKENS.app],
      // A project's route by its full path.
      [`/api/v4/projects/${encodeURIComponent(LONG)}/packages/generic/x/1.0/f.txt`, TOKENS.web]
    ]
    for (const [path, token] of requests) {
      const res = await send(g.url, 'GET', path, { 'job-token': token })
      assert.equal(res.status, 403, `${unknownProject} ${path.slice(0, 60)}: ${res.text.slice(0, 200)}`)
      assert.equal(res.json().code, 'PROJECT_PATH_TOO_LONG', path.slice(0, 60))
    }
    assert.equal(g.seen.length, 0, 'nothing reached GitLab')
    // A path of 2048 characters is looked up as before: GitLab shows none there.
    const looked = `/api/v4/projects/${encodeURIComponent(LONG.slice(0, 2048))}/packages/generic/x/1.0/f.txt`
    const res = await send(g.url, 'GET', looked, { 'job-token': TOKENS.web })
    assert.equal(res.status, unknownProject === 'allow' ? 200 : 403, res.text)
  }
})

test('a user\'s package write through a full path too long to look up is refused, REST and GraphQL', async (t) => {
  const g = await gateWithPackageRule(t, 'generic', { write: 'maintainer' })
  const put = await send(g.url, 'PUT', `/api/v4/projects/${encodeURIComponent(LONG)}/packages/generic/x/1.0/f.txt`, { 'private-token': USERS.developer }, 'bytes')
  assert.equal(put.status, 403, put.text.slice(0, 200))
  assert.equal(put.json().code, 'PROJECT_PATH_TOO_LONG')
  const mutation = `mutation { mlModelCreate(input: {projectPath: "${LONG}", name: "churn"}) { errors } }`
  const graphql = await send(g.url, 'POST', '/api/graphql', { 'content-type': 'application/json', 'private-token': USERS.developer }, JSON.stringify({ query: mutation }))
  assert.equal(graphql.status, 403, graphql.text.slice(0, 200))
  assert.equal(graphql.json().code, 'PROJECT_PATH_TOO_LONG')
  assert.deepEqual(g.seen.filter(s => s.method !== 'PATCH').map(s => s.url.slice(0, 40)), [], 'nothing reached GitLab')
  // Reads are no user's package write: GitLab's.
  const read = await send(g.url, 'GET', `/api/v4/projects/${encodeURIComponent(LONG)}/packages/generic/x/1.0/f.txt`, { 'private-token': USERS.developer })
  assert.equal(read.status, 200, read.text)
})
