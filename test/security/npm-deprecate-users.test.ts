// Finding: npm's publish route deprecates versions on `Npm-Command: deprecate`, which GitLab runs
// as a destroy (lib/api/npm_project_packages.rb, authorize_destroy_package!), and the gate holds
// such a job-token request to the format's delete rule. The users' check did not: for a request
// without a job token the route stayed a write, so where a project kept npm deletes to
// Maintainers (`npm.delete: "maintainer"`, `write` unset) a Developer's token deprecated every
// version of its packages unchecked. A user's deprecate is now a delete too.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

const PACKAGE = '/api/v4/projects/200/packages/npm/@acme%2fcli'
const json = { 'content-type': 'application/json' }
const body = JSON.stringify({ name: '@acme/cli', versions: { '1.0.0': { deprecated: 'do not use' } } })

test('a user\'s npm deprecate is a delete: Maintainers only where npm deletes are kept to them', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { npm: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const before = g.seen.length
  const spellings: ReadonlyArray<Record<string, string>> = [{ 'npm-command': 'deprecate' }, { Npm_Command: ' Deprecate ' }]
  for (const headers of spellings) {
    const answer = await send(g.url, 'PUT', PACKAGE, { ...json, 'private-token': USERS.developer, ...headers }, body)
    assert.equal(answer.status, 403, `${JSON.stringify(headers)}: ${answer.text}`)
    assert.equal(answer.json().code, 'PACKAGE_MAINTAINER_ONLY')
    assert.match(answer.json().message, /may delete npm packages/)
  }
  assert.equal(g.seen.length, before, 'no deprecation reached GitLab')

  // A publish stays a write, which the project left to GitLab's roles; a Maintainer may deprecate.
  const publish = await send(g.url, 'PUT', PACKAGE, { ...json, 'private-token': USERS.developer }, body)
  assert.equal(publish.status, 200, publish.text)
  const maintainer = await send(g.url, 'PUT', PACKAGE, { ...json, 'private-token': USERS.maintainer, 'npm-command': 'deprecate' }, body)
  assert.equal(maintainer.status, 200, maintainer.text)
})
