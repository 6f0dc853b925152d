// Finding: the Kubernetes manifests' shared settings (deploy/kubernetes/base/configmap.yaml, used
// by the sidecar and the standalone overlay) set GATE_UNRESOLVED_PROJECT=defer, written when
// `defer` was the default and the only looser choice, and kept after `resolve` became the default.
// Every deployment made from them forwarded job tokens on group and instance package routes
// (Conan, Maven, npm, NuGet, ... under /packages/ and /groups/:id/-/packages/) to GitLab
// undecided: a job could upload a Conan package into a project whose allowlist does not name it,
// and GitLab decided with its own allowlist, which the gate no longer keeps up to date. In the
// shadow roll-out these requests were logged `deferred`, never `would_deny`, so nothing showed
// them. The manifests now leave the setting at its default.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, projectsGate } from '../projects/world.ts'

const SHIPPED: Record<string, string> = parse(readFileSync(new URL('../../deploy/kubernetes/base/configmap.yaml', import.meta.url), 'utf8')).data

// acme/registry (700) lists only the group `other`; the app job (project 100) is in acme.
const upload = '/api/v4/packages/conan/v1/files/pkg/1.0/acme+registry/stable/0/export/conanfile.py'

test('with the shipped settings, enforcing: a Conan upload into a project that does not list the job is refused', async t => {
  const g = await projectsGate(t, { ...SHIPPED, GATE_MODE: 'enforce' })
  const res = await send(g.url, 'PUT', upload, { 'job-token': TOKENS.app }, 'recipe')
  assert.equal(res.status, 403, res.text)
  assert.equal(res.json().code, 'NOT_ALLOWLISTED')
  assert.equal(forwarded(g, upload), 0, 'GitLab never saw the upload')
})

test('with the shipped settings, in shadow: the same upload is counted as would_deny, not deferred', async t => {
  const g = await projectsGate(t, SHIPPED)
  assert.equal((await send(g.url, 'PUT', upload, { 'job-token': TOKENS.app }, 'recipe')).status, 200)
  const line = await decisionOf(g, upload)
  assert.deepEqual([line.decision, line.reason, line.accessed_project_id], ['would_deny', 'NOT_ALLOWLISTED', 700])
})
