// A test gate with the configuration API on: an operator token and four GitLab users of
// acme/lib (200): a Maintainer, a group Owner (group_access), a Developer, and a Maintainer who
// also sees acme/platform/app (100) and acme/platform/web (600) as a Reporter.

import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, type TestGate } from './gate.ts'
import { send } from './http.ts'

export const ADMIN = 'gate-operator-secret-token'
export const USERS = {
  maintainer: 'glpat-maintainer-of-lib',
  owner: 'glpat-group-owner-of-lib',
  developer: 'glpat-developer-of-lib',
  lead: 'glpat-maintainer-of-lib-sees-platform'
} as const

export async function adminGate (t: TestContext, env: Record<string, string> = {}): Promise<TestGate> {
  return await startTestGate(t, { GATE_ADMIN_TOKEN: ADMIN, ...env }, {
    users: {
      [USERS.maintainer]: { id: 41, username: 'mia', access: { 200: 40 } },
      [USERS.owner]: { id: 42, username: 'olga', groupAccess: { 200: 50 }, access: { 200: 10 } },
      [USERS.developer]: { id: 43, username: 'dev', access: { 200: 30, 100: 30 } },
      [USERS.lead]: { id: 44, username: 'lea', access: { 200: 40, 100: 20, 600: 20 } }
    }
  })
}


/** An adminGate whose acme/lib (200) sets `rule` for `format` (docs/admin.md, per package format rules). */
export async function gateWithPackageRule (t: TestContext, format: string, rule: Record<string, unknown>): Promise<TestGate> {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { [format]: rule } }))
  assert.equal(patch.status, 200, patch.text)
  return g
}

/** The least-privilege report of `project` once the usage recorded so far is written (docs/admin.md). */
export async function usageReport (g: TestGate, project: number | string): Promise<any> {
  await g.gate.usage.flush()
  const answer = await send(g.url, 'GET', `/api/v4/projects/${project}/job_token_scope/usage`, { 'private-token': ADMIN })
  assert.equal(answer.status, 200, answer.text)
  return answer.json()
}
