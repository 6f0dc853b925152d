// Which connections a set of Kubernetes NetworkPolicies admits, read as the API defines them
// (networking.k8s.io/v1): a pod no policy of type Ingress selects takes every connection; a
// selected pod takes one that some rule of some selecting policy admits by its port and its peer.
// Peers by pod and namespace labels (matchLabels, matchExpressions); an ipBlock is taken to admit
// every source, which can only make a check of what is kept out fail. The source's own egress
// policies are left out: a CI job's namespace is not the gate's to restrict.

export interface PodAt {
  readonly namespace: string
  readonly labels: Readonly<Record<string, string>>
  /** Labels of the pod's namespace besides kubernetes.io/metadata.name, which every namespace has. */
  readonly namespaceLabels?: Readonly<Record<string, string>>
  /** The pod's named container ports, for policies that name a port. */
  readonly ports?: Readonly<Record<string, number>>
}

interface Selector {
  readonly matchLabels?: Record<string, string>
  readonly matchExpressions?: ReadonlyArray<{ key: string, operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist', values?: string[] }>
}

export interface NetworkPolicyObject {
  readonly kind: string
  readonly metadata: { readonly name: string, readonly namespace?: string }
  readonly spec: {
    readonly podSelector: Selector
    readonly policyTypes?: readonly string[]
    readonly ingress?: ReadonlyArray<{
      readonly from?: ReadonlyArray<{ podSelector?: Selector, namespaceSelector?: Selector, ipBlock?: unknown }>
      readonly ports?: ReadonlyArray<{ port?: number | string, endPort?: number, protocol?: string }>
    }>
  }
}

function selects (selector: Selector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key)
    const ok = e.operator === 'Exists' ? has
      : e.operator === 'DoesNotExist' ? !has
        : e.operator === 'In' ? has && (e.values ?? []).includes(labels[e.key]!)
          : !has || !(e.values ?? []).includes(labels[e.key]!)
    if (!ok) return false
  }
  return true
}

const namespaceLabels = (pod: PodAt): Record<string, string> => ({ ...pod.namespaceLabels, 'kubernetes.io/metadata.name': pod.namespace })

/**
 * Whether `source` may open a TCP connection to `target` on `port` under `policies` (other kinds
 * are ignored). `defaultNamespace`: where a policy without one in its metadata is applied.
 */
export function admits (policies: readonly NetworkPolicyObject[], source: PodAt, target: PodAt, port: number, defaultNamespace = 'default'): boolean {
  const selecting = policies.filter(p => p.kind === 'NetworkPolicy' &&
    (p.metadata.namespace ?? defaultNamespace) === target.namespace &&
    selects(p.spec.podSelector, target.labels) &&
    (p.spec.policyTypes ?? ['Ingress']).includes('Ingress'))
  if (selecting.length === 0) return true
  return selecting.some(p => (p.spec.ingress ?? []).some(rule => {
    const portOk = rule.ports === undefined || rule.ports.length === 0 || rule.ports.some(r => {
      if ((r.protocol ?? 'TCP') !== 'TCP') return false
      if (r.port === undefined) return true
      const number = typeof r.port === 'number' ? r.port : target.ports?.[r.port]
      return number !== undefined && (r.endPort === undefined ? port === number : port >= number && port <= r.endPort)
    })
    const peerOk = rule.from === undefined || rule.from.length === 0 || rule.from.some(peer => {
      if (peer.ipBlock !== undefined) return true
      const inNamespace = peer.namespaceSelector === undefined
        ? source.namespace === (p.metadata.namespace ?? defaultNamespace)
        : selects(peer.namespaceSelector, namespaceLabels(source))
      return inNamespace && (peer.podSelector === undefined || selects(peer.podSelector, source.labels))
    })
    return portOk && peerOk
  }))
}
