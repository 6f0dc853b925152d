// Finding: the users' package rules on GitLab's GraphQL package mutations (destroyPackageFiles,
// the model registry's mlModel*) asked GitLab whom the request's cookies sign in (`GET /user`)
// once for every project path they checked, up to 20 of each kind, where the answer is the same
// for all of them: one request naming 20 made-up paths with any Cookie header cost 40 calls, with
// a user's session 60. Whom the cookies sign in is asked once per request now, whatever it checks
// and for both kinds of mutation, and nothing is decided otherwise.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADMIN, USERS } from '../helpers/admin-gate.ts'
import { startTestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { scrape, total } from '../helpers/metrics.ts'

const json = { 'content-type': 'application/json' }
const deletes = (paths: readonly string[]): string => paths.map((p, i) => `d${i}: destroyPackageFiles(input: {projectPath: "${p}", ids: []}) { errors }`).join(' ')
const creates = (paths: readonly string[]): string => paths.map((p, i) => `m${i}: mlModelCreate(input: {projectPath: "${p}", name: "m"}) { errors }`).join(' ')
const madeUp = (n: number, tag: string): string[] => Array.from({ length: n }, (_, i) => `nobody/${tag}${i}`)
const session = (token: string): Record<string, string> => ({ cookie: `_gitlab_session=${token}`, 'x-csrf-token': 'csrf' })
// A Developer of acme/lib (200) whose session GitLab's API refuses (403: terms not accepted).
const PENDING = 'session-of-developer-pending-terms'

test('a GraphQL request\'s package mutations ask whom its cookies sign in once, however many projects they name', async t => {
  const g = await startTestGate(t, { GATE_ADMIN_TOKEN: ADMIN }, {
    users: {
      [USERS.maintainer]: { id: 41, username: 'mia', access: { 200: 40 } },
      [USERS.developer]: { id: 43, username: 'dev', access: { 200: 30, 100: 30 } },
      [PENDING]: { id: 46, username: 'tess', access: { 200: 30 }, apiDenied: true }
    }
  })
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { npm: { delete: 'maintainer' }, ml_model: { write: 'maintainer', delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  // The package rules' calls by endpoint (a token's own description is asked apart).
  const calls = async (): Promise<{ all: number, user: number }> => {
    const { samples } = await scrape(g.healthUrl)
    const all = total(samples, 'job_token_gate_gitlab_requests_total') - total(samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'token_self' })
    return { all, user: total(samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'user' }) }
  }
  const post = async (headers: Record<string, string>, mutations: string): Promise<{ status: number, code: unknown, text: string, calls: { all: number, user: number } }> => {
    const before = await calls()
    const res = await send(g.url, 'POST', '/api/graphql', { ...json, ...headers }, JSON.stringify({ query: `mutation { ${mutations} }` }))
    const after = await calls()
    let code: unknown
    try { code = res.json().code } catch {}
    return { status: res.status, code, text: res.text, calls: { all: after.all - before.all, user: after.user - before.user } }
  }

  // Made-up cookies: each path's project (the service token's lookup), and the cookies once.
  const cookie = await post({ cookie: 'made_up=1' }, deletes(madeUp(20, 'a')))
  assert.equal(cookie.status, 200, cookie.text)
  assert.deepEqual(cookie.calls, { all: 21, user: 1 })
  // A user's session: each path's project, as the gate and as the session, and the cookies once.
  const developer = await post(session(USERS.developer), deletes(madeUp(20, 'b')))
  assert.equal(developer.status, 200, developer.text)
  assert.deepEqual(developer.calls, { all: 41, user: 1 })
  // Both kinds of mutation in one request: the cookies still asked once.
  const both = await post({ cookie: 'made_up=1' }, `${creates(madeUp(20, 'c'))} ${deletes(madeUp(20, 'd'))}`)
  assert.equal(both.status, 200, both.text)
  assert.deepEqual(both.calls, { all: 41, user: 1 })

  // Decided as before: a Developer's session refused at the real project among made-up ones, a
  // Maintainer's let through, made-up cookies beside a Developer's token refused, a session
  // GitLab's API refuses (403) no one there, as before.
  for (const [name, headers, mutations, code] of [
    ['a Developer\'s session, deletes', session(USERS.developer), deletes([...madeUp(19, 'e'), 'acme/lib']), 'PACKAGE_MAINTAINER_ONLY'],
    ['a Developer\'s session, model registry', session(USERS.developer), `${creates([...madeUp(19, 'f'), 'acme/lib'])} ${deletes(madeUp(3, 'g'))}`, 'PACKAGE_MAINTAINER_ONLY'],
    ['a Developer\'s token and made-up cookies', { cookie: 'made_up=1', authorization: `Bearer ${USERS.developer}` }, deletes([...madeUp(19, 'h'), 'acme/lib']), 'PACKAGE_MAINTAINER_ONLY'],
    ['a session GitLab\'s API refuses', session(PENDING), `${creates([...madeUp(19, 'k'), 'acme/lib'])} ${deletes([...madeUp(19, 'l'), 'acme/lib'])}`, undefined],
    ['a Maintainer\'s session', session(USERS.maintainer), `${creates([...madeUp(19, 'i'), 'acme/lib'])} ${deletes([...madeUp(19, 'j'), 'acme/lib'])}`, undefined]
  ] as const) {
    const res = await post(headers, mutations)
    assert.equal(res.code, code, `${name}: ${res.text}`)
    assert.equal(res.status, code === undefined ? 200 : 403, name)
    assert.ok(res.calls.user <= 1, `${name}: the cookies asked ${res.calls.user} times`)
  }
})
