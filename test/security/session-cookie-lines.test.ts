// Finding: the users' package rules ask GitLab whom a request's cookies sign in
// (`GET /api/v4/user`), reading repeated Cookie lines as Puma hands them to Rails, joined with
// ', ', in which Rack finds no session (it splits cookies on ';' alone: `theme=dark,
// _gitlab_session=...` is one cookie named `theme`). But the proxy forwarded the request's headers
// as Node's parser keeps them, and Node joins repeated Cookie lines with '; ': GitLab read the
// session there. A Developer who sent their session as a second Cookie line (after `Cookie:
// theme=dark`) was taken for no one by the gate, and GitLab deleted the registry model through the
// web UI, uploaded a chart beside a job's token, or deleted a package (through the API or GraphQL),
// as the Developer, where the project keeps those to Maintainers. The proxy now forwards repeated Cookie lines as Puma joins
// them, the value the gate asked GitLab about.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { rawRequest, send } from '../helpers/http.ts'
import { TOKENS } from '../helpers/gate.ts'

/** A request written byte for byte (rawRequest), so that its header lines reach the gate as listed. */
async function sendLines (base: string, method: string, path: string, lines: ReadonlyArray<readonly [string, string]>, body = ''): Promise<{ status: number, text: string }> {
  const answer = await rawRequest(Number(new URL(base).port), [`${method} ${path} HTTP/1.1`, ...lines.map(([name, value]) => `${name}: ${value}`), `Content-Length: ${Buffer.byteLength(body)}`], body)
  return { status: answer.status, text: answer.body }
}

/** The `_gitlab_session` value Rack reads from a Cookie header (split on ';' alone, the first of a name kept). */
function rackSession (cookie: unknown): string | undefined {
  for (const pair of String(cookie ?? '').split(/; */)) {
    const at = pair.indexOf('=')
    if (at > 0 && pair.slice(0, at) === '_gitlab_session') return pair.slice(at + 1)
  }
  return undefined
}

test('a Developer\'s session sent as a second Cookie line is not forwarded where the gate took it for no one', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: { delete: 'maintainer' }, helm: { write: 'job_token_and_maintainer' }, npm: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  g.gitlab.packages.push({ id: 5, name: 'left-pad', version: '1.0.0', packageType: 'npm', projectId: 200, createdAt: '2026-01-01T00:00:00Z' })
  const requests: ReadonlyArray<readonly [string, string, ReadonlyArray<readonly [string, string]>, string]> = [
    // GitLab's web UI's model delete.
    ['DELETE', '/acme/lib/-/ml/models/7.json', [], ''],
    // A chart upload beside the project's own job's token, which Helm does not read there.
    ['POST', '/api/v4/projects/200/packages/helm/api/stable/charts', [['job-token', TOKENS.lib], ['content-type', 'application/octet-stream']], 'chart'],
    // A package delete, through the API and through GitLab's GraphQL.
    ['DELETE', '/api/v4/projects/200/packages/5', [], ''],
    ['POST', '/api/graphql', [['content-type', 'application/json']], JSON.stringify({ query: 'mutation { destroyPackage(input: {id: "gid://gitlab/Packages::Package/5"}) { errors } }' })]
  ]
  for (const order of ['after', 'before'] as const) {
    for (const [method, path, extra, body] of requests) {
      const session: readonly [string, string] = ['cookie', `_gitlab_session=${USERS.developer}`]
      const theme: readonly [string, string] = ['cookie', 'theme=dark']
      const cookies = order === 'after' ? [theme, session] : [session, theme]
      const before = g.seen.length
      const res = await sendLines(g.url, method, path, [...cookies, ['x-csrf-token', 'csrf'], ...extra], body)
      if (res.status === 403) {
        assert.match(res.text, /PACKAGE_MAINTAINER_ONLY/, `${method} ${path} (session ${order})`)
        continue
      }
      const forwarded = g.seen.slice(before)
      assert.equal(forwarded.length, 1, `${method} ${path} (session ${order}): ${res.status} ${res.text}`)
      // A first line's session is read with the later lines in its value: a session of no one.
      assert.notEqual(rackSession(forwarded[0]!.headers.cookie), USERS.developer, `${method} ${path} (session ${order}): forwarded with ${String(forwarded[0]!.headers.cookie)}, whose session GitLab reads`)
    }
  }
})

test('one Cookie line is forwarded as it came, and a Developer\'s session in it is still refused', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const refused = await sendLines(g.url, 'DELETE', '/acme/lib/-/ml/models/7.json', [['cookie', `theme=dark; _gitlab_session=${USERS.developer}`], ['x-csrf-token', 'csrf']])
  assert.equal(refused.status, 403, refused.text)
  const before = g.seen.length
  const passed = await sendLines(g.url, 'DELETE', '/acme/lib/-/ml/models/7.json', [['cookie', `theme=dark; _gitlab_session=${USERS.maintainer}`], ['x-csrf-token', 'csrf']])
  assert.equal(passed.status, 200, passed.text)
  assert.equal(g.seen[before]!.headers.cookie, `theme=dark; _gitlab_session=${USERS.maintainer}`)
})
