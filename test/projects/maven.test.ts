// Maven's instance API (the project's full path is the package path minus its version; GitLab
// does not follow a moved project's redirect there) and group API (the newest package of that
// name and version, or versionless, within the group).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { ADMIN } from '../helpers/admin-gate.ts'
import { decisionOf, forwarded, pkg, projectsGate } from './world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })

test('Maven instance downloads: refused outside the allowlist, allowed with read_packages and to the own project', async t => {
  const g = await projectsGate(t)
  const jar = '/api/v4/packages/maven/acme/lib/1.0/lib-1.0.jar'
  const refused = await send(g.url, 'GET', jar, job(TOKENS.tools))
  assert.equal(refused.status, 403)
  assert.equal(refused.json().code, 'NOT_ALLOWLISTED')
  assert.equal(forwarded(g, jar), 0)
  assert.equal((await send(g.url, 'GET', jar, job(TOKENS.app))).status, 200)
  assert.equal((await decisionOf(g, jar)).reason, 'POLICIES_GRANTED')
  assert.equal((await send(g.url, 'GET', jar, job(TOKENS.lib))).status, 200)
  assert.equal((await decisionOf(g, jar)).reason, 'SELF_ACCESS')
  // The path is compared case-insensitively, as GitLab finds projects.
  assert.equal((await send(g.url, 'GET', '/api/v4/packages/maven/ACME/Lib/1.0/lib-1.0.jar', job(TOKENS.tools))).json().code, 'NOT_ALLOWLISTED')
  // Package rules apply: acme/lib turns job-token Maven reads off.
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { maven: { read: false, write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  assert.equal((await send(g.url, 'GET', jar, job(TOKENS.app))).json().code, 'PACKAGE_READ_DISABLED')
})

test('Maven instance: a moved project\'s old path is not followed (GitLab\'s find_by_full_path does not)', async t => {
  const g = await projectsGate(t)
  g.gitlab.redirects.set('acme/oldlib', 200)
  const jar = '/api/v4/packages/maven/acme/oldlib/1.0/oldlib-1.0.jar'
  const res = await send(g.url, 'GET', jar, job(TOKENS.tools))
  assert.equal(res.status, 200, 'forwarded: GitLab answers (it finds no project either)')
  const log = await decisionOf(g, jar)
  assert.deepEqual([log.decision, log.reason], ['deferred', 'NO_PROJECT'])
  // A path with no project part, and an unknown project: no project.
  for (const path of ['/api/v4/packages/maven/lib/lib-1.0.jar', '/api/v4/packages/maven/nobody/x/1.0/x-1.0.jar']) {
    assert.equal((await send(g.url, 'GET', path, job(TOKENS.tools))).status, 200, path)
    assert.equal((await decisionOf(g, path)).reason, 'NO_PROJECT', path)
  }
})

test('Maven group downloads: the package of that name and version decides; versionless metadata too; other names are no project', async t => {
  const g = await projectsGate(t)
  g.gitlab.packages.push(
    pkg('com/acme/app', '1.0', 'maven', 200, '2026-01-01T00:00:00Z'),
    pkg('com/acme/app', null, 'maven', 200, '2026-01-01T00:00:01Z'),
    // Same name, another version, newer, in the app job's own project: not the one asked for.
    pkg('com/acme/app', '2.0', 'maven', 100, '2026-02-01T00:00:00Z'),
    // Fuzzy match of the name, exact version: not taken.
    pkg('com/acme/app-extra', '1.0', 'maven', 100, '2026-03-01T00:00:00Z'))
  const jar = '/api/v4/groups/10/-/packages/maven/com/acme/app/1.0/app-1.0.jar'
  assert.equal((await send(g.url, 'GET', jar, job(TOKENS.tools))).json().code, 'NOT_ALLOWLISTED')
  assert.equal((await decisionOf(g, jar)).accessed_project_id, 200)
  assert.equal((await send(g.url, 'GET', jar, job(TOKENS.app))).status, 200)
  assert.equal((await decisionOf(g, jar)).reason, 'POLICIES_GRANTED')
  const metadata = '/api/v4/groups/acme/-/packages/maven/com/acme/app/maven-metadata.xml'
  assert.equal((await send(g.url, 'GET', metadata, job(TOKENS.tools))).json().code, 'NOT_ALLOWLISTED')
  const v2 = '/api/v4/groups/10/-/packages/maven/com/acme/app/2.0/app-2.0.jar'
  assert.equal((await send(g.url, 'GET', v2, job(TOKENS.app))).status, 200)
  assert.equal((await decisionOf(g, v2)).reason, 'SELF_ACCESS')
  const none = '/api/v4/groups/10/-/packages/maven/com/acme/other/1.0/other-1.0.jar'
  assert.equal((await send(g.url, 'GET', none, job(TOKENS.tools))).status, 200)
  assert.equal((await decisionOf(g, none)).reason, 'NO_PROJECT')
  // A group GitLab does not know: no project.
  const unknownGroup = '/api/v4/groups/999/-/packages/maven/com/acme/app/1.0/app-1.0.jar'
  assert.equal((await send(g.url, 'GET', unknownGroup, job(TOKENS.tools))).status, 200)
  assert.equal((await decisionOf(g, unknownGroup)).reason, 'NO_PROJECT')
})

test('Maven: GitLab failing is a 503; a path looked up once is cached', async t => {
  const g = await projectsGate(t)
  const jar = '/api/v4/packages/maven/acme/lib/1.0/lib-1.0.jar'
  assert.equal((await send(g.url, 'GET', '/api/v4/job', job(TOKENS.app))).status, 200)
  g.gitlab.failWith.project = 503
  assert.equal((await send(g.url, 'GET', jar, job(TOKENS.app))).json().code, 'PROJECT_LOOKUP_UNAVAILABLE')
  delete g.gitlab.failWith.project
  g.gitlab.resetCalls()
  for (let i = 0; i < 3; i++) assert.equal((await send(g.url, 'GET', jar.replace('1.0', `1.${i}`), job(TOKENS.app))).status, 200)
  assert.equal(g.gitlab.calls.project, 1, 'one lookup of acme/lib for every version')
})
