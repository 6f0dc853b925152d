// Finding: with no relative URL root configured, the web UI's model delete is checked against
// every project its path may name after a root GitLab may have (up to 24 readings), each asking
// GitLab for the project at that path and, as the caller, whether the cookies sign anyone in,
// nothing kept where GitLab shows no project. No account was needed: one DELETE of 25 made-up
// segments with any Cookie header cost GitLab 48 calls, and as many again for each new path. A
// path with more than MAX_WEB_DELETE_READINGS readings is refused now before any is asked, and the
// cookies are asked once per request, not once per reading.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_WEB_DELETE_READINGS } from '../../src/routing/package-fallback.ts'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { scrape, total } from '../helpers/metrics.ts'

const madeUp = (n: number, tag: string): string => Array.from({ length: n }, (_, i) => `${tag}${i}`).join('/')
const session = (token: string): Record<string, string> => ({ cookie: `_gitlab_session=${token}`, 'x-csrf-token': 'csrf' })

test('a web model delete with no root configured is checked at a bounded number of readings, the cookies asked once', async t => {
  const g = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const calls = async (): Promise<number> => total((await scrape(g.healthUrl)).samples, 'job_token_gate_gitlab_requests_total')
  const forwarded = (): number => g.seen.filter(s => s.url.includes('/-/ml/models/')).length

  // More readings than the gate checks: refused, GitLab asked nothing, whoever sends it.
  const before = await calls()
  for (const [name, path, headers] of [
    ['made-up cookie', `/${madeUp(25, 'a')}/-/ml/models/7`, { cookie: 'made_up=1' }],
    ['made-up cookie, a POST', `/${madeUp(MAX_WEB_DELETE_READINGS + 2, 'b')}/-/ml/models/7`, { cookie: 'made_up=1' }],
    ['a Maintainer', `/${madeUp(MAX_WEB_DELETE_READINGS - 1, 'c')}/gitlab/acme/lib/-/ml/models/7`, session(USERS.maintainer)]
  ] as const) {
    for (const url of [g.url, auth]) {
      const res = await send(url, name.endsWith('POST') ? 'POST' : 'DELETE', path, headers)
      assert.equal(res.status, 403, `${name}: ${res.text}`)
      assert.equal(res.json().code, 'WEB_MODEL_DELETE_TOO_DEEP', name)
    }
  }
  assert.equal(await calls() - before, 0, 'nothing asked of GitLab')
  assert.equal(forwarded(), 0)

  // As many readings as it checks: each project once, the cookies once.
  const atMost = await calls()
  const checked = await send(g.url, 'DELETE', `/${madeUp(MAX_WEB_DELETE_READINGS + 1, 'd')}/-/ml/models/7`, { cookie: 'made_up=1' })
  assert.equal(checked.status, 200, checked.text)
  assert.equal(await calls() - atMost, MAX_WEB_DELETE_READINGS + 1, 'each reading\'s project, and the cookies once')
  // The project GitLab takes under a root among them is still held to its rule.
  const developer = await send(g.url, 'DELETE', `/${madeUp(MAX_WEB_DELETE_READINGS - 2, 'e')}/gitlab/acme/lib/-/ml/models/7`, session(USERS.developer))
  assert.equal(developer.status, 403, developer.text)
  assert.equal(developer.json().code, 'PACKAGE_MAINTAINER_ONLY')
  const maintainer = await send(g.url, 'DELETE', `/${madeUp(MAX_WEB_DELETE_READINGS - 2, 'f')}/gitlab/acme/lib/-/ml/models/7`, session(USERS.maintainer))
  assert.equal(maintainer.status, 200, maintainer.text)
  assert.equal(forwarded(), 2)
})
