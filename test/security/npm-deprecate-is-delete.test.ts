// Finding: npm's publish route, `PUT /projects/:id/packages/npm/:package_name`, deprecates
// versions instead when the request says `Npm-Command: deprecate` (`npm deprecate`), and GitLab
// then asks for the destroy ability, as a delete does (lib/api/npm_project_packages.rb,
// authorize_destroy_package!). The catalog derived the route's operation from its method alone,
// a write: a project that let job tokens publish npm packages but kept deletes to Maintainers
// (`npm.delete: "maintainer"`) had its job tokens deprecate every version all the same. Such a
// request is now held to the format's delete rule; a publish stays a write.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN } from '../helpers/admin-gate.ts'
import { TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const PACKAGE = '/api/v4/projects/200/packages/npm/@acme%2fcli'
const json = { 'content-type': 'application/json' }
const body = JSON.stringify({ name: '@acme/cli', versions: { '1.0.0': { deprecated: 'do not use' } } })

/** acme/lib (200): job tokens may publish npm packages, not delete them. */
async function world (t: TestContext): Promise<TestGate> {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { npm: { write: 'job_token_and_maintainer', delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  return g
}

test('npm deprecate through the publish route is a delete: refused where job tokens may not delete', async t => {
  const g = await world(t)
  const before = g.seen.length
  // Every spelling Puma hands Rails as Npm-Command, and the ones the gate reads more strictly.
  const spellings: ReadonlyArray<Record<string, string>> = [
    { 'npm-command': 'deprecate' },
    { 'Npm-Command': 'deprecate' },
    { npm_command: 'deprecate' },
    { 'npm-command': ' Deprecate ' }
  ]
  for (const headers of spellings) {
    const answer = await send(g.url, 'PUT', PACKAGE, { ...json, 'job-token': TOKENS.lib, ...headers }, body)
    assert.equal(answer.status, 403, `${JSON.stringify(headers)}: ${answer.text}`)
    assert.equal(answer.json().code, 'PACKAGE_MAINTAINER_ONLY')
    assert.match(answer.json().message, /may delete npm packages/)
  }
  assert.equal(g.seen.length, before, 'no deprecation reached GitLab')
})

test('npm publish through the same route stays a write, which job tokens may do', async t => {
  const g = await world(t)
  const publishes: ReadonlyArray<Record<string, string>> = [{}, { 'npm-command': 'publish' }]
  for (const headers of publishes) {
    const answer = await send(g.url, 'PUT', PACKAGE, { ...json, 'job-token': TOKENS.lib, ...headers }, body)
    assert.equal(answer.status, 200, `${JSON.stringify(headers)}: ${answer.text}`)
  }
})
