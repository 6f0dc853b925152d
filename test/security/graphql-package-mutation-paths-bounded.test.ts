// Finding: the users' package rules on GitLab's GraphQL package mutations (destroyPackageFiles,
// the model registry's mlModel*) checked every distinct `projectPath` a request named, each
// asking GitLab which project the path names (with the service token) and whether the caller's
// cookies sign anyone in (`GET /user`), as the caller, none of it kept when GitLab shows nothing
// there. No account was needed: one 41 KB request of 500 aliased mutations naming made-up paths,
// with any Cookie header, cost GitLab 1,000 calls, then 500 on each resend, before being
// forwarded (about 17,000 paths fit a 1 MiB body). At most 20 such checks are made for one
// request now; more are refused before any is asked, as more than 20 package IDs are.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gateWithPackageRule, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { scrape, total } from '../helpers/metrics.ts'

const json = { 'content-type': 'application/json' }
const deletes = (paths: readonly string[]): string => `mutation { ${paths.map((p, i) => `d${i}: destroyPackageFiles(input: {projectPath: "${p}", ids: []}) { errors }`).join(' ')} }`
const creates = (paths: readonly string[]): string => `mutation { ${paths.map((p, i) => `m${i}: mlModelCreate(input: {projectPath: "${p}", name: "m"}) { errors }`).join(' ')} }`
const madeUp = (n: number): string[] => Array.from({ length: n }, (_, i) => `nobody/p${i}`)

test('a GraphQL request\'s package mutations are checked at 20 project paths at most, more refused before GitLab is asked', async t => {
  const g = await gateWithPackageRule(t, 'npm', { delete: 'maintainer' })
  // The calls of the package rules: a token's own description (fine-grained or not) is asked apart, once.
  const calls = async (): Promise<number> => {
    const { samples } = await scrape(g.healthUrl)
    return total(samples, 'job_token_gate_gitlab_requests_total') - total(samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'token_self' })
  }
  const forwarded = (): number => g.seen.filter(s => s.url.startsWith('/api/graphql')).length
  const post = async (headers: Record<string, string>, query: string): Promise<{ status: number, code: unknown, text: string }> => {
    const res = await send(g.url, 'POST', '/api/graphql', { ...json, ...headers }, JSON.stringify({ query }))
    let code: unknown
    try { code = res.json().code } catch {}
    return { status: res.status, code, text: res.text }
  }

  const before = await calls()
  for (const [name, headers, query] of [
    ['deletes, a made-up cookie', { cookie: 'made_up=1' }, deletes(madeUp(500))],
    ['deletes, a user\'s token', { 'private-token': USERS.developer }, deletes(madeUp(21))],
    ['model registry, a made-up cookie', { cookie: 'made_up=1' }, creates(madeUp(500))],
    ['model registry, a user\'s token', { 'private-token': USERS.developer }, creates(madeUp(21))]
  ] as const) {
    const res = await post(headers, query)
    assert.equal(res.status, 400, `${name}: ${res.text}`)
    assert.equal(res.code, 'GRAPHQL_TOO_MANY_PROJECTS', name)
  }
  assert.equal(await calls() - before, 0, 'nothing asked of GitLab')
  assert.equal(forwarded(), 0)

  // Twenty, a path written twice counting once: checked, and forwarded.
  const twenty = [...madeUp(20), 'nobody/p0']
  const checked = await post({ cookie: 'made_up=1' }, deletes(twenty))
  assert.equal(checked.status, 200, checked.text)
  assert.ok(await calls() - before <= 2 * 20, `each path's project and the cookie asked at most once, not ${await calls() - before} calls`)
  // The real project among them is still held to its rule.
  const developer = await post({ 'private-token': USERS.developer }, deletes([...madeUp(19), 'acme/lib']))
  assert.equal(developer.code, 'PACKAGE_MAINTAINER_ONLY', developer.text)
  // No credential and no cookie: nothing is asked, whatever the count, and GitLab deletes nothing.
  const asked = await calls()
  const anonymous = await post({}, deletes(madeUp(500)))
  assert.equal(anonymous.status, 200, anonymous.text)
  assert.equal(await calls(), asked)
  assert.equal(forwarded(), 2)
})
