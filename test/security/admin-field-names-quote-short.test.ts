// Finding: the configuration API's REST refusals named a field it does not know whole: an action
// of a package format's rule (in the field and again in its message), a body field of
// the allowlist or permissions endpoints. A 900 KB name was answered with up to 1.8 MB, twice what
// was sent, while the answers quoted every other piece of client text up to 100 characters
// (src/text.ts quoted). These names are now quoted the same way: 100 characters, then their length.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

const maintainer = { 'private-token': USERS.maintainer, 'content-type': 'application/json' }
const name = 'n'.repeat(900_000)
const short = `${'n'.repeat(100)}... (900000 characters)`

test('admin REST: a long unknown field or action is named short', async t => {
  const g = await adminGate(t)
  for (const [method, path, body, field] of [
    ['PATCH', '/api/v4/projects/200/job_token_permissions', { package_registry: { maven: { [name]: true } } }, `package_registry.maven.${short}`],
    ['PATCH', '/api/v4/projects/200/job_token_permissions', { package_registry: {}, [name]: 1 }, short],
    ['POST', '/api/v4/projects/200/job_token_scope/allowlist', { target_project_id: 100, [name]: 1 }, short]
  ] as const) {
    const res = await send(g.url, method, path, maintainer, JSON.stringify(body))
    assert.equal(res.status, 400, res.text.slice(0, 300))
    assert.ok(res.text.length < 4096, `${method} ${path}: an answer of ${res.text.length} bytes`)
    const errors = res.json().errors as Array<{ field: string, message: string }>
    assert.ok(errors.some(e => e.field === field), JSON.stringify(errors))
  }
})
