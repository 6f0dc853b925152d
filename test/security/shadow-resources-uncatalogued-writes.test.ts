// GATE_SHADOW_RESOURCES=packages keeps package denies in shadow while the rest enforce. A user's
// package write that no catalog route lists is held to its format's rule as a packages route
// (test/security/package-rules-uncatalogued-writes.test.ts), but having no route it had no
// resource: its deny was enforced while the same rule on a listed route was only logged, so a
// roll-out that shadowed packages still refused Developers' uploads. Such a deny is shadowed with
// `packages` now, and enforced where packages are not shadowed.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

const WRITES: ReadonlyArray<readonly [string, string, string]> = [
  ['listed', 'PUT', '/api/v4/projects/200/packages/generic/tool/1.0/tool.bin'],
  ['not listed', 'POST', '/api/v4/projects/200/packages/generic/tool/1.0/tool.bin/some-future-step'],
  ['not listed, by path', 'PATCH', '/api/v4/projects/acme%2Flib/packages/cargo/api/v1/crates/pkg/1.0.0/yank']
]

const MODES: ReadonlyArray<readonly [Record<string, string>, 'would_deny' | 'deny']> = [
  [{ GATE_SHADOW_RESOURCES: 'packages' }, 'would_deny'],
  [{ GATE_SHADOW_RESOURCES: 'releases,deployments' }, 'deny'],
  [{ GATE_MODE: 'shadow' }, 'would_deny'],
  [{}, 'deny']
]

test('a user\'s package write the catalog does not list is shadowed with the packages resource', async (t) => {
  for (const [env, decision] of MODES) {
    const g = await adminGate(t, env)
    const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
      JSON.stringify({ package_registry: { generic: { write: 'maintainer' }, cargo: { write: 'maintainer' } } }))
    assert.equal(patch.status, 200, patch.text)
    for (const [which, method, path] of WRITES) {
      const what = `${JSON.stringify(env)}: ${which} ${method} ${path}`
      const res = await send(g.url, method, path, { 'private-token': USERS.developer }, 'bytes')
      assert.equal(res.status, decision === 'deny' ? 403 : 200, `${what}: ${res.text}`)
      const line = g.logs.filter(l => l.msg === 'decision').at(-1)
      assert.deepEqual([line?.decision, line?.reason], [decision, 'PACKAGE_MAINTAINER_ONLY'], what)
    }
  }
})
