// deploy/kubernetes: both overlays render with `kubectl kustomize`, every rendered object
// validates against the Kubernetes (and prometheus-operator) schemas, and what the manifests say
// about the gate is checked against the gate itself: GATE_* names and values through loadConfig,
// ports through the listen settings, probe and scrape paths against a running health listener,
// the shutdown timing against the drain timeout and the shutdown margin.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { ConfigMap, Service } from 'kubernetes-models/v1'
import { Deployment } from 'kubernetes-models/apps/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1'
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1'
import { loadConfig, SETTINGS, type Config } from '../../src/config.ts'
import { SHUTDOWN_MARGIN_MS } from '../../src/main.ts'
import { startTestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const OVERLAYS = `${ROOT}deploy/kubernetes/overlays/`

// A missing kubectl fails CI (.ci/run installs it); elsewhere the rendering tests are skipped.
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0
const skip = !kubectl && process.env.CI !== 'true' ? 'kubectl is not installed (.ci/run installs Debian\'s kubernetes-client)' : false

type K8sObject = { apiVersion: string, kind: string, metadata: { name: string, annotations?: Record<string, string> }, spec?: any, data?: Record<string, string> }

/** The schema validator for each kind the manifests use; any other kind fails the test. */
const MODELS: Record<string, new (data: any) => { validate: () => void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor
}

function render (overlay: string): K8sObject[] {
  const run = spawnSync('kubectl', ['kustomize', OVERLAYS + overlay], { encoding: 'utf8' })
  assert.equal(run.status, 0, `kubectl kustomize ${overlay}: ${run.stderr}`)
  return parseAllDocuments(run.stdout).map(doc => doc.toJS() as K8sObject).filter(o => o !== null)
}

function validateAll (objects: readonly K8sObject[]): void {
  for (const object of objects) {
    const Model = MODELS[`${object.apiVersion}/${object.kind}`]
    assert.ok(Model !== undefined, `${object.kind} ${object.metadata.name}: no schema for ${object.apiVersion}`)
    assert.doesNotThrow(() => new Model(object).validate(), `${object.kind} ${object.metadata.name} is valid`)
  }
}

const find = (objects: readonly K8sObject[], kind: string, name?: string): K8sObject[] =>
  objects.filter(o => o.kind === kind && (name === undefined || o.metadata.name === name))

function one (objects: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const found = find(objects, kind, name)
  assert.equal(found.length, 1, `one ${kind} ${name ?? ''}`)
  return found[0]!
}

interface GateContainer { deployment: K8sObject, pod: any, container: any, env: Record<string, string>, config: Config }

/**
 * The gate's container and the environment it gets: its ConfigMaps (envFrom), then env, with
 * secrets as placeholders and $(VAR) references expanded as the kubelet does. Every GATE_*
 * name must be a setting, and loadConfig must accept the values.
 */
function gateContainer (objects: readonly K8sObject[]): GateContainer {
  const names = new Set<string>(Object.values(SETTINGS).map(s => s.env))
  const found = find(objects, 'Deployment').flatMap(d => (d.spec.template.spec.containers as any[]).filter(c => c.name === 'job-token-gate').map(c => ({ d, c })))
  assert.equal(found.length, 1, 'one job-token-gate container')
  const { d: deployment, c: container } = found[0]!
  const env: Record<string, string> = {}
  for (const source of container.envFrom ?? []) {
    const map = one(objects, 'ConfigMap', source.configMapRef.name)
    for (const [k, v] of Object.entries(map.data ?? {})) env[k] = v
  }
  for (const e of container.env ?? []) {
    env[e.name] = e.value !== undefined ? String(e.value).replace(/\$\((\w+)\)/g, (_, v: string) => env[v] ?? `$(${v})`) : `secret-${e.name.toLowerCase()}`
  }
  for (const key of Object.keys(env)) {
    if (key.startsWith('GATE_')) assert.ok(names.has(key), `${key} is a setting of src/config.ts`)
  }
  const config = loadConfig(env, { required: ['upstreamUrl'] })
  return { deployment, pod: deployment.spec.template.spec, container, env, config }
}

/** A container port by number or name. */
function containerPort (container: any, port: number | string): number {
  const found = (container.ports as any[]).find(p => p.containerPort === port || p.name === port)
  assert.ok(found !== undefined, `container ${container.name} has port ${port}`)
  return found.containerPort
}

/** What both layouts need of the gate's container. */
async function checkGate (t: any, gate: GateContainer): Promise<void> {
  const { pod, container, config } = gate
  // Ports: those the settings listen on.
  assert.deepEqual((container.ports as any[]).map(p => p.containerPort).sort(), [config.listen.port, config.healthListen.port].sort())
  // Probes on the health listener, on paths it answers.
  for (const probe of [container.readinessProbe, container.livenessProbe]) {
    assert.equal(containerPort(container, probe.httpGet.port), config.healthListen.port)
  }
  const running = await startTestGate(t)
  for (const path of [container.readinessProbe.httpGet.path, container.livenessProbe.httpGet.path]) {
    assert.equal((await send(running.healthUrl, 'GET', path)).status, 200, `${path} answers on the health listener`)
  }
  assert.equal((await send(running.healthUrl, 'GET', '/-/not-a-probe')).status, 404, 'the health listener does not answer every path')
  // Hardening.
  const sc = container.securityContext
  assert.equal(sc.runAsNonRoot, true)
  assert.equal(sc.allowPrivilegeEscalation, false)
  assert.equal(sc.readOnlyRootFilesystem, true)
  assert.deepEqual(sc.capabilities.drop, ['ALL'])
  const dockerUser = /^USER (\d+):(\d+)$/m.exec(readFileSync(`${ROOT}Dockerfile`, 'utf8'))
  assert.equal(String(sc.runAsUser), dockerUser?.[1], 'runAsUser is the image\'s user')
  assert.ok(container.resources.requests.cpu !== undefined && container.resources.requests.memory !== undefined)
  assert.ok(container.resources.limits.memory !== undefined)
  // SIGTERM comes after preStop; the pod must outlive the drain and the gate's own deadline.
  const command = container.lifecycle.preStop.exec.command as string[]
  assert.equal(command[0], 'sleep')
  const preStopS = Number(command[1])
  assert.ok(preStopS >= 5, 'preStop leaves the endpoints time to update')
  assert.ok(pod.terminationGracePeriodSeconds > preStopS + (config.drainTimeoutMs + SHUTDOWN_MARGIN_MS) / 1000,
    `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} > preStop ${preStopS} s + drain ${config.drainTimeoutMs} ms + margin ${SHUTDOWN_MARGIN_MS} ms`)
  assert.deepEqual(container.args, ['serve'])
}

/** The Service port whose target is the given container port, by number or name. */
function servicePortFor (service: K8sObject, container: any, port: number): any {
  const target = (p: any): unknown => p.targetPort ?? p.port
  const found = (service.spec.ports as any[]).filter(p => (container.ports as any[]).some(c => c.containerPort === port && (c.containerPort === target(p) || c.name === target(p))))
  assert.equal(found.length, 1, `one port of Service ${service.metadata.name} reaches container port ${port}`)
  return found[0]
}

test('sidecar overlay: the gate in GitLab\'s webservice pod, in front of Workhorse', { skip }, async (t) => {
  const objects = render('sidecar')
  validateAll(objects)
  const gate = gateContainer(objects)
  await checkGate(t, gate)
  const { pod, container, config, deployment } = gate
  assert.equal(deployment.metadata.name, 'gitlab-webservice-default', 'patched, not replaced: the chart\'s Deployment')
  const names = (pod.containers as any[]).map(c => c.name)
  assert.deepEqual(names.filter(n => n !== 'job-token-gate').sort(), ['gitlab-workhorse', 'webservice'], 'the chart\'s containers are kept')
  const workhorse = (pod.containers as any[]).find(c => c.name === 'gitlab-workhorse')
  // The gate forwards to Workhorse in the pod, never to Puma.
  const upstream = new URL(config.upstreamUrl!)
  assert.ok(['127.0.0.1', 'localhost'].includes(upstream.hostname))
  assert.equal(Number(upstream.port), containerPort(workhorse, 'http-workhorse'))
  // The gate's ports are free in the pod: no other container's, nor Workhorse's health listener
  // (8182) or Puma's control port (9293), which the chart may turn on.
  const taken = new Set([8182, 9293, ...(pod.containers as any[]).filter(c => c.name !== 'job-token-gate').flatMap(c => (c.ports ?? []).map((p: any) => p.containerPort))])
  for (const port of [config.listen.port, config.healthListen.port]) assert.ok(!taken.has(port), `port ${port} is free in the webservice pod`)
  // The Service's Workhorse port (where the Ingress sends traffic) now reaches the gate.
  const service = one(objects, 'Service', 'gitlab-webservice-default')
  const front = (service.spec.ports as any[]).find(p => p.name === 'http-workhorse')
  assert.equal(front.port, 8181)
  assert.equal(containerPort(container, front.targetPort), config.listen.port)
  servicePortFor(service, container, config.healthListen.port)
  assert.equal(one(objects, 'ConfigMap', 'job-token-gate').data!.GATE_MODE, 'shadow', 'a new deployment starts in shadow mode')

  // Workhorse and Puma still listen on the pod's address: only the gate's API port is open to
  // every pod, Puma to the release's own pods and monitoring, Workhorse to nobody outside the pod.
  const policy = one(objects, 'NetworkPolicy')
  for (const [k, v] of Object.entries(policy.spec.podSelector.matchLabels as Record<string, string>)) {
    assert.equal(deployment.spec.template.metadata.labels[k], v, 'the policy selects the webservice pods')
  }
  assert.deepEqual(policy.spec.policyTypes, ['Ingress'])
  const rules = policy.spec.ingress as any[]
  const open = rules.filter(r => r.from === undefined).flatMap(r => r.ports.map((p: any) => p.port))
  assert.deepEqual(open, [config.listen.port], 'only the gate\'s API port takes every pod')
  const admitted = new Set(rules.flatMap(r => r.ports.map((p: any) => p.port)))
  for (const port of [containerPort(workhorse, 'http-workhorse'), 8182]) assert.ok(!admitted.has(port), `Workhorse's ${port} is reached from inside the pod only`)
  const puma = (pod.containers as any[]).find(c => c.name === 'webservice')
  assert.ok(rules.filter(r => r.ports.some((p: any) => p.port === containerPort(puma, 'http-webservice'))).every(r => r.from !== undefined), 'Puma is not open to every pod')
  assert.ok(admitted.has(config.healthListen.port), 'the gate\'s health port can be scraped')
})

test('standalone overlay: Deployment, Service, PDB, HPA, NetworkPolicy, ServiceMonitor, Redis Sentinel', { skip }, async (t) => {
  const objects = render('standalone')
  validateAll(objects)
  const gate = gateContainer(objects)
  await checkGate(t, gate)
  const { deployment, container, config } = gate
  assert.equal(deployment.spec.replicas, 3)
  assert.ok(config.redisSentinels.length >= 3, 'grants in Redis behind Sentinel')
  const selector = deployment.spec.selector.matchLabels
  const service = one(objects, 'Service', 'job-token-gate')
  assert.deepEqual(service.spec.selector, selector)
  servicePortFor(service, container, config.listen.port)
  const monitoring = servicePortFor(service, container, config.healthListen.port)

  const pdb = one(objects, 'PodDisruptionBudget')
  assert.deepEqual(pdb.spec.selector.matchLabels, selector)
  assert.ok(pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < deployment.spec.replicas)
  const hpa = one(objects, 'HorizontalPodAutoscaler')
  assert.equal(hpa.spec.scaleTargetRef.name, deployment.metadata.name)
  assert.equal(hpa.spec.minReplicas, deployment.spec.replicas)
  assert.equal(hpa.spec.metrics[0].resource.name, 'cpu')

  const policy = one(objects, 'NetworkPolicy', 'job-token-gate')
  assert.deepEqual(policy.spec.podSelector.matchLabels, selector)
  assert.deepEqual([...policy.spec.policyTypes].sort(), ['Egress', 'Ingress'])
  const ingressPorts = (policy.spec.ingress as any[]).flatMap(r => r.ports.map((p: any) => p.port)).sort()
  assert.deepEqual(ingressPorts, [config.listen.port, config.healthListen.port].sort())
  const egressPorts = new Set((policy.spec.egress as any[]).flatMap(r => r.ports.map((p: any) => p.port)))
  assert.ok(egressPorts.has(Number(new URL(config.upstreamUrl!).port)), 'egress to GitLab')
  for (const sentinel of config.redisSentinels) assert.ok(egressPorts.has(Number(sentinel.split(':').at(-1))), `egress to ${sentinel}`)

  // Scraping: annotations and the ServiceMonitor name the health listener and a path it serves.
  const annotations = deployment.spec.template.metadata.annotations
  assert.equal(annotations['prometheus.io/scrape'], 'true')
  assert.equal(Number(annotations['prometheus.io/port']), config.healthListen.port)
  const monitor = one(objects, 'ServiceMonitor')
  for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels as Record<string, string>)) {
    assert.equal((service.metadata as { labels?: Record<string, string> }).labels?.[k], v, 'the ServiceMonitor selects the Service')
  }
  assert.equal(monitor.spec.endpoints[0].port, monitoring.name)
  const running = await startTestGate(t)
  for (const path of [annotations['prometheus.io/path'], monitor.spec.endpoints[0].path]) {
    const scraped = await send(running.healthUrl, 'GET', path)
    assert.equal(scraped.status, 200)
    assert.match(scraped.text, /^job_token_gate_/m)
  }
})

test('the old single-file manifest is gone and the nginx example uses the gate\'s sidecar ports', () => {
  assert.equal(existsSync(`${ROOT}deploy/kubernetes/sidecar.yaml`), false)
  const nginx = readFileSync(`${ROOT}deploy/nginx/job-token-gate.conf`, 'utf8')
  const sidecar = readFileSync(`${OVERLAYS}sidecar/webservice-deployment.yaml`, 'utf8')
  const apiPort = /name: GATE_LISTEN\s+value: [\d.]+:(\d+)/.exec(sidecar)?.[1]
  assert.ok(apiPort !== undefined)
  assert.match(nginx, new RegExp(`upstream job_token_gate \\{\\s+server 127\\.0\\.0\\.1:${apiPort};`), 'nginx reaches the gate\'s API listener where the sidecar puts it, not on Workhorse\'s 8181')
})
