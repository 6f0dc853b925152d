// What the gate makes of one request line: used by `job-token-gate explain`.

import type { CanonicalRequest } from './canonical.ts'
import { accessedProject, describeAccessedProject } from './accessed.ts'
import { describeLookup, groupReadingsOf, lookupOf, mavenVirtualRegistryOf, packageReadGroupOf, servesEveryListedProject, type Lookup } from '../projects/lookup.ts'
import { conanSearchKind, type CatalogRoute } from '../catalog/types.ts'
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
    /** Package routes: the per-format rule the accessed project's job token permissions hold it to. */
    packageRule?: string
    /** Package reads GitLab serves from projects besides the one decided: whose rules are held too. */
    alsoHeld?: string
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
    ...(lookup === undefined ? {} : { projectFrom: from, projectLookup: lookup, projectLookupText: describeLookup(lookup) }),
    ...packageRules(match.route, match.params, lookup)
  }
}

/** The package rule a route is held to, and the other projects whose rules hold where GitLab serves from several. */
function packageRules (route: CatalogRoute, params: Readonly<Record<string, string>>, lookup: Lookup | undefined): { packageRule?: string, alsoHeld?: string } {
  const registry = mavenVirtualRegistryOf(route, params)
  if (registry !== null) {
    return { alsoHeld: `every project among Maven virtual registry ${registry}'s local upstreams (its projects, and those of its groups): a job token's download is refused where any sets package_registry.maven.read false` }
  }
  if (route.packageFormat === undefined || route.packageOperation === undefined) return {}
  const rule = `package_registry.${route.packageFormat}.${route.packageOperation}` +
    (route.packageDeleteWhen === undefined ? '' : ` (package_registry.${route.packageFormat}.delete with ${route.packageDeleteWhen.header}: ${route.packageDeleteWhen.value})`)
  const search = conanSearchKind(route)
  if (search === 'instance') return { packageRule: rule, alsoHeld: `a job token's search is decided on the project its q's username names (name/version@group+project/channel); one without a username reads every project the job's user can read, and is refused (CONAN_SEARCH_UNSCOPED)` }
  if (search === 'project') return { packageRule: rule, alsoHeld: `a job token's search naming a full reference whose username is another project's (name/version@group+project/channel) is refused (CONAN_SEARCH_OTHER_PROJECT): some GitLab releases answer it from that project` }
  const group = packageReadGroupOf(route, params)
  // A group the gate finds no single project of: GitLab serves from any project under it.
  if (group !== null && lookup?.kind === 'unresolvable') {
    const groups = route.accessedProject === 'group' ? groupReadingsOf(group) : [group]
    return { packageRule: rule, alsoHeld: `every project under ${groups.map(g => `group ${JSON.stringify(g)}`).join(' and ')}: refused where any sets ${rule} false (a user's namespace, or over 1,000 projects: refused)` }
  }
  if (servesEveryListedProject(route)) return { packageRule: rule, alsoHeld: `every project whose packages of that name the metadata lists: refused where any sets ${rule} false, or does not let the job in (PACKAGE_LISTED_PROJECT_NOT_ALLOWED)` }
  return { packageRule: rule }
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
      if (e.packageRule !== undefined) rows.push(['package rule', `${e.packageRule} of the accessed project's job token permissions`])
      if (e.alsoHeld !== undefined) rows.push(['also held', e.alsoHeld])
      if (e.format) rows.splice(4, 0, ['format', 'json (suffix stripped by GitLab)'])
      return rows.map(([k, v]) => `${k.padEnd(18)}${v}`).join('\n') + '\n'
    }
  }
}
