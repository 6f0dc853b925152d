// Finding: whether the service token sees every project was read from `GET /user`'s is_admin and
// is_auditor, but GitLab's finders show every project to a caller that can read all resources
// (`can_read_all_resources?`), and `GET /user` tells something else: is_admin is the account's
// flag, shown whatever Admin Mode, and an auditor is shown no is_auditor (UserPublic; lib/api/users.rb).
// With Admin Mode on, an administrator's token without the `admin_mode` scope is shown the
// projects its user may read only: the gate took it for one that sees them all, npm's metadata of
// a name left out a project that keeps npm reads from job tokens, the job's read was decided on
// its own project and forwarded, and GitLab listed that project's versions to the job. And an
// auditor's token, which sees every project, had these reads refused. The gate now asks
// `GET /users/:id` of the token's user, whose administrator fields (UserDetailsWithAdmin) GitLab
// shows a caller that can read all resources only.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, pkg, projectsGate } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const METADATA = '/api/v4/packages/npm/@acme%2fsecret'

test('an administrator\'s token outside Admin Mode is not taken for one that sees every project', async t => {
  const g = await projectsGate(t)
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, packageRules: { npm: { read: false, write: 'maintainer' } } })
  g.gitlab.packages.push(pkg('@acme/secret', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'), pkg('@acme/secret', '9.9.9', 'npm', 100, '2026-03-01T00:00:00Z'))
  // Its user is no member of acme/lib: outside Admin Mode, GitLab shows it the app's versions only.
  g.gitlab.serviceRole = 'admin_without_admin_mode'
  g.gitlab.serviceHidden.add(200)
  const res = await send(g.url, 'GET', METADATA, job(TOKENS.app))
  assert.equal(res.status, 403, res.text)
  assert.equal(res.json().code, 'PROJECT_LOOKUP_UNVERIFIED')
  assert.equal(forwarded(g, METADATA), 0)
})

test('an auditor\'s token sees every project: the npm metadata\'s projects are held to their rules', async t => {
  const g = await projectsGate(t)
  g.gitlab.serviceRole = 'auditor'
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, packageRules: { npm: { read: false, write: 'maintainer' } } })
  g.gitlab.packages.push(pkg('@acme/secret', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'), pkg('@acme/secret', '9.9.9', 'npm', 100, '2026-03-01T00:00:00Z'))
  assert.equal((await send(g.url, 'GET', METADATA, job(TOKENS.app))).json().code, 'PACKAGE_READ_DISABLED')
  g.gitlab.packages.push(pkg('@acme/own', '1.0.0', 'npm', 100, '2026-01-01T00:00:00Z'))
  const own = '/api/v4/packages/npm/@acme%2fown'
  assert.equal((await send(g.url, 'GET', own, job(TOKENS.app))).status, 200)
  assert.equal((await decisionOf(g, own)).reason, 'SELF_ACCESS')
})
