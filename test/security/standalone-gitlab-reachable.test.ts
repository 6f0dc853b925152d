// Finding: the standalone overlay (deploy/kubernetes/overlays/standalone) put the gate in front of
// GitLab's webservice (namespace gitlab, app: webservice) but left the webservice pods open: no
// NetworkPolicy selected them, so a CI job's pod anywhere in the cluster could send its job token
// to Workhorse (8181) or Puma (8080) on the pod's address or through the Service
// gitlab-webservice-default.gitlab.svc, and skip the gate. The sidecar overlay ships such a
// policy; the standalone one now does too: Workhorse takes the gate's pods and GitLab's own,
// Puma GitLab's own and monitoring, Workhorse's health listener nobody from outside the pod.
//
// The overlays are rendered with `kubectl kustomize` and their policies read as Kubernetes reads
// them (test/helpers/network-policy.ts): there is no cluster to connect in.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { admits, type NetworkPolicyObject, type PodAt } from '../helpers/network-policy.ts'

const OVERLAYS = fileURLToPath(new URL('../../deploy/kubernetes/overlays/', import.meta.url))
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0
const skip = !kubectl && process.env.CI !== 'true' ? 'kubectl is not installed (.ci/run installs Debian\'s kubernetes-client)' : false

function render (overlay: string): any[] {
  const run = spawnSync('kubectl', ['kustomize', OVERLAYS + overlay], { encoding: 'utf8' })
  assert.equal(run.status, 0, `kubectl kustomize ${overlay}: ${run.stderr}`)
  return parseAllDocuments(run.stdout).map(doc => doc.toJS()).filter(o => o !== null)
}

// CI jobs of the Kubernetes executor: in the release's namespace (the chart's bundled runner) or
// one of their own, labelled by the runner, never with the chart's labels.
const JOBS: readonly PodAt[] = [
  { namespace: 'gitlab', labels: { pod: 'runner-abcd-project-42-concurrent-0' } },
  { namespace: 'gitlab-runner', labels: { pod: 'runner-abcd-project-42-concurrent-0' } }
]
// GitLab Shell, KAS, Pages: the chart's pods call the internal API on Workhorse.
const GITLAB_SHELL: PodAt = { namespace: 'gitlab', labels: { app: 'gitlab-shell', release: 'gitlab' } }
// The GitLab chart's bundled ingress controller carries the release's label too.
const BUNDLED_INGRESS: PodAt = { namespace: 'gitlab', labels: { app: 'nginx-ingress', component: 'controller', release: 'gitlab' } }
const WORKHORSE = 8181
const WORKHORSE_HEALTH = 8182
const PUMA = 8080

test('standalone overlay: CI jobs cannot reach GitLab\'s webservice past the gate; the gate can', { skip }, () => {
  const objects = render('standalone')
  const policies = objects.filter(o => o.kind === 'NetworkPolicy') as NetworkPolicyObject[]
  const deployment = objects.find(o => o.kind === 'Deployment' && o.metadata.name === 'job-token-gate')
  const gate: PodAt = { namespace: deployment.metadata.namespace ?? 'default', labels: deployment.spec.template.metadata.labels }
  // Where the gate forwards to, as its own egress rule names it.
  const webservice: PodAt = { namespace: 'gitlab', labels: { app: 'webservice', release: 'gitlab', 'gitlab.com/webservice-name': 'default' } }
  const egress = policies.find(p => p.metadata.name === 'job-token-gate')!.spec as any
  assert.ok((egress.egress as any[]).some(r => r.to.some((peer: any) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === webservice.namespace && peer.podSelector?.matchLabels?.app === webservice.labels.app)), 'the gate\'s egress names GitLab\'s webservice pods')

  assert.ok(admits(policies, gate, webservice, WORKHORSE), 'the gate reaches Workhorse')
  assert.ok(admits(policies, GITLAB_SHELL, webservice, WORKHORSE), 'GitLab\'s own pods reach Workhorse')
  for (const job of JOBS) {
    for (const port of [WORKHORSE, WORKHORSE_HEALTH, PUMA]) {
      assert.ok(!admits(policies, job, webservice, port), `a CI job in namespace ${job.namespace} reaches the webservice's ${port} past the gate`)
    }
  }
  // The chart's bundled ingress controller reaches the gate, never the webservice: an Ingress
  // left on the webservice gets no answer instead of skipping the gate.
  assert.ok(admits(policies, BUNDLED_INGRESS, gate, 8181), 'the bundled ingress controller reaches the gate')
  for (const port of [WORKHORSE, WORKHORSE_HEALTH, PUMA]) assert.ok(!admits(policies, BUNDLED_INGRESS, webservice, port), `the bundled ingress controller reaches the webservice's ${port} past the gate`)
  // A pod that copies the gate's labels in another namespace is not the gate.
  for (const job of JOBS) assert.ok(!admits(policies, { ...job, labels: gate.labels }, webservice, WORKHORSE), `a pod labelled as the gate in ${job.namespace}`)
})

test('sidecar overlay: CI jobs reach the webservice pods on the gate\'s API port only', { skip }, () => {
  const objects = render('sidecar')
  const policies = objects.filter(o => o.kind === 'NetworkPolicy') as NetworkPolicyObject[]
  const deployment = objects.find(o => o.kind === 'Deployment' && o.metadata.name === 'gitlab-webservice-default')
  // The helm post-renderer's output is applied in the release's namespace.
  const pod: PodAt = { namespace: 'gitlab', labels: deployment.spec.template.metadata.labels }
  for (const job of JOBS) {
    assert.ok(admits(policies, job, pod, 8190, 'gitlab'), 'the gate\'s API listener takes every pod')
    for (const port of [WORKHORSE, WORKHORSE_HEALTH, PUMA, 8191]) {
      assert.ok(!admits(policies, job, pod, port, 'gitlab'), `a CI job in namespace ${job.namespace} reaches ${port} past the gate`)
    }
  }
  assert.ok(admits(policies, GITLAB_SHELL, pod, PUMA, 'gitlab'))
})
