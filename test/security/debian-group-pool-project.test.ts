// Finding: Debian's group pool download names its project in the URL, and GitLab's handler acts
// on that project (lib/api/debian_group_packages.rb: `find_project!(params[:project_id])`, with
// its allowlist and policies). The catalog took it for a route of the group's packages
// (`projectFrom: none`), so the gate forwarded a job token there undecided: any job could
// download any project's Debian files where GitLab's `debian_group_packages` flag is on. It is now
// decided as the project `:project_id` names, as a `/projects/:id` route is, in every
// GATE_UNRESOLVED_PROJECT mode (a first fix went through the group routes' finder, which `defer`
// skips).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, projectsGate } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })

for (const mode of ['resolve', 'defer', 'deny']) {
  test(`a Debian group pool download is decided as the project its :project_id names (GATE_UNRESOLVED_PROJECT=${mode})`, async t => {
    // The URL tells the project: no setting for routes whose URL does not applies.
    const g = await projectsGate(t, { GATE_UNRESOLVED_PROJECT: mode })
    // other/tools (300) lists nobody: the app job (project 100) is refused, through either route.
    const viaProject = await send(g.url, 'GET', '/api/v4/projects/300/packages/debian/pool/stable/f/foo/1.0/foo_1.0_amd64.deb', job(TOKENS.app))
    assert.equal(viaProject.json().code, 'NOT_ALLOWLISTED')
    for (const id of ['300', '+300', '0300']) {
      const path = `/api/v4/groups/other/-/packages/debian/pool/stable/${id}/f/foo/1.0/foo_1.0_amd64.deb`
      const res = await send(g.url, 'GET', path, job(TOKENS.app))
      assert.equal(res.status, 403, `${path}: ${res.text}`)
      assert.equal(res.json().code, 'NOT_ALLOWLISTED', path)
      assert.equal(forwarded(g, path), 0, path)
      assert.equal((await decisionOf(g, path)).reason, 'NOT_ALLOWLISTED', path)
    }
    // The job's own project through any group: self access, forwarded.
    const own = '/api/v4/groups/other/-/packages/debian/pool/stable/100/f/foo/1.0/foo_1.0_amd64.deb'
    const allowed = await send(g.url, 'GET', own, job(TOKENS.app))
    assert.equal(allowed.status, 200, allowed.text)
    assert.equal(forwarded(g, own), 1)
  })
}
