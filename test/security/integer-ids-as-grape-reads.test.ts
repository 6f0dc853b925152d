// Finding: Helm's routes declare the project `:id` `types: [Integer, String]` (Integer first), so
// Grape coerces it with Ruby's `Integer(value, 10)`: `+300`, `%2B300`, `3_00`, `%20300` and
// `300%20` are project 300 to GitLab. The gate read only `/^-?\d+$/` as an id and took the rest
// for a full path: one the store did not know, which with GATE_UNKNOWN_PROJECT=allow was allowed
// before any lookup, although the store knew project 300 and its allowlist. Such ids are now
// read as the number Ruby reads (test/rack/ruby-integer.slow.ts checks the reading against Ruby).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, projectsGate } from '../projects/world.ts'

const basic = (token: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`gitlab-ci-token:${token}`).toString('base64')}` })

test('GATE_UNKNOWN_PROJECT=allow: a Helm request to project 300 spelled as Ruby reads 300 is decided on project 300', async t => {
  const g = await projectsGate(t, { GATE_UNKNOWN_PROJECT: 'allow' })
  // other/tools (300) is known to the store and lists nobody: the app job (project 100) is refused.
  const plain = await send(g.url, 'GET', '/api/v4/projects/300/packages/helm/stable/index.yaml', basic(TOKENS.app))
  assert.equal(plain.json().code, 'NOT_ALLOWLISTED')
  for (const id of ['+300', '%2B300', '3_00', '%20300', '300%20', '0d300']) {
    for (const [method, path] of [
      ['GET', `/api/v4/projects/${id}/packages/helm/stable/index.yaml`],
      ['GET', `/api/v4/projects/${id}/packages/helm/stable/charts/app-1.0.0.tgz`],
      ['POST', `/api/v4/projects/${id}/packages/helm/api/stable/charts/authorize`]
    ] as const) {
      const res = await send(g.url, method, path, basic(TOKENS.app))
      assert.equal(res.status, 403, `${method} ${path}: ${res.text}`)
      assert.equal(res.json().code, 'NOT_ALLOWLISTED', path)
      assert.equal(forwarded(g, path), 0, path)
      assert.equal((await decisionOf(g, path)).reason, 'NOT_ALLOWLISTED', path)
    }
  }
  // The job's own project, spelt so, is self access.
  const own = await send(g.url, 'GET', '/api/v4/projects/+100/packages/helm/stable/index.yaml', basic(TOKENS.app))
  assert.equal(own.status, 200, own.text)
})
