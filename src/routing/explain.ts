// What the gate makes of one request line: used by `job-token-gate explain`.

import type { CanonicalRequest } from './canonical.ts'
import { accessedProject, describeAccessedProject } from './accessed.ts'
import { describeLookup, lookupOf, type Lookup } from '../projects/lookup.ts'
import type { Router } from './router.ts'

export type Explanation =
  | { result: 'rejected', code: string, reason: string }
  | { result: 'not_api', canonicalPath: string }
  | { result: 'no_route', method: string, canonicalPath: string }
  | {
    result: 'matched'
    method: string
    canonicalPath: string
    routeId: string
    pattern: string
    title: string
    resource: string
    params: Record<string, string>
    format: boolean
    policies: string[]
    skipPolicies: boolean
    accessedProject: ReturnType<typeof accessedProject>
    accessedProjectText: string
    /** Group, instance and job routes: how the gate finds the project (GATE_UNRESOLVED_PROJECT=resolve). */
    projectFrom?: string
    projectLookup?: Lookup
    projectLookupText?: string
  }

export function explain (router: Router, canonical: CanonicalRequest): Explanation {
  if (canonical.kind === 'rejected') return { result: 'rejected', code: canonical.code, reason: canonical.reason }
  if (canonical.kind === 'other') return { result: 'not_api', canonicalPath: canonical.path }
  const match = router.match(canonical.method, canonical.apiPath)
  if (match === null) return { result: 'no_route', method: canonical.method, canonicalPath: canonical.path }
  const accessed = accessedProject(match)
  const from = match.route.projectFrom
  // A project the URL names (a group route's :project_id) needs no lookup.
  const lookup = from === undefined || accessed.kind === 'project_id' ? undefined : lookupOf(from, match.params)
  return {
    result: 'matched',
    method: canonical.method,
    canonicalPath: canonical.path,
    routeId: match.route.id,
    pattern: `${match.route.method} ${match.route.pattern}`,
    title: match.route.title,
    resource: match.route.resource,
    params: { ...match.params },
    format: match.format,
    policies: [...match.route.policies],
    skipPolicies: match.route.skipPolicies,
    accessedProject: accessed,
    accessedProjectText: describeAccessedProject(accessed),
    ...(lookup === undefined ? {} : { projectFrom: from, projectLookup: lookup, projectLookupText: describeLookup(lookup) })
  }
}

export function formatExplanation (e: Explanation): string {
  switch (e.result) {
    case 'rejected': return `rejected (${e.code}): ${e.reason}\n`
    case 'not_api': return `canonical path  ${e.canonicalPath}\nnot an API path (outside /api/v4): no catalog route applies\n`
    case 'no_route': return `canonical path  ${e.canonicalPath}\nno catalog route for ${e.method}: GitLab does not accept a job token here\n`
    case 'matched': {
      const rows: Array<[string, string]> = [
        ['canonical path', e.canonicalPath],
        ['route', e.routeId],
        ['pattern', e.pattern],
        ['title', e.title],
        ['params', Object.entries(e.params).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ') || '(none)'],
        ['policies', e.skipPolicies ? '(none: job tokens accepted, fine-grained policies skipped)' : e.policies.join(', ')],
        ['accessed project', e.accessedProjectText]
      ]
      if (e.projectLookupText !== undefined) rows.push(['project lookup', `${e.projectFrom!}: ${e.projectLookupText}`])
      if (e.format) rows.splice(4, 0, ['format', 'json (suffix stripped by GitLab)'])
      return rows.map(([k, v]) => `${k.padEnd(18)}${v}`).join('\n') + '\n'
    }
  }
}
