// The per package format rules (ProjectGrants.packageRules, set through the configuration API)
// as a pure check after GitLab's decision: a job token that the allowlist lets in may still be
// refused a format's reads, writes or deletes. It applies to every job token, the project's
// own jobs included: the rules are about the project's own registry. The catalog says per
// route which format and operation it is; nothing here looks at the request path.

import { ANY_PACKAGE_FORMAT, type CatalogRoute } from '../catalog/types.ts'
import { effectiveRule } from '../grants/package-rules-model.ts'
import type { ProjectGrants } from '../grants/model.ts'

export type PackageRuleDenyReason = 'PACKAGE_READ_DISABLED' | 'PACKAGE_MAINTAINER_ONLY'

export type PackageRuleDecision =
  | { readonly allow: true }
  | { readonly allow: false, readonly reason: PackageRuleDenyReason, readonly message: string }

const ALLOW: PackageRuleDecision = Object.freeze({ allow: true })

/** Hot path for package routes only: one lookup in a small object per request. */
export function checkPackageRules (route: CatalogRoute, grants: ProjectGrants | null, accessedProjectId: number): PackageRuleDecision {
  const format = route.packageFormat
  const operation = route.packageOperation
  const rules = grants?.packageRules
  if (format === undefined || operation === undefined || rules === undefined) return ALLOW
  // The format-agnostic package API (`/packages/:package_id`) may touch a package of any format:
  // the strictest configured rule applies, so no format's rule can be bypassed through it.
  const formats = format === ANY_PACKAGE_FORMAT ? Object.keys(rules).sort() : [format]
  for (const name of formats) {
    const rule = rules[name]
    if (rule === undefined) continue
    const e = effectiveRule(rule)
    if (operation === 'read' && !e.read) {
      return {
        allow: false,
        reason: 'PACKAGE_READ_DISABLED',
        message: `403 Forbidden - CI/CD job tokens may not read ${name} packages of project #${accessedProjectId} (job token permissions: package_registry.${name}.read is false).`
      }
    }
    if (operation !== 'read' && e[operation] === 'maintainer') {
      return {
        allow: false,
        reason: 'PACKAGE_MAINTAINER_ONLY',
        message: `403 Forbidden - only users with the Maintainer role or higher may ${operation} ${name} packages of project #${accessedProjectId}; CI/CD job tokens may not (job token permissions: package_registry.${name}.${operation} is "maintainer").`
      }
    }
  }
  return ALLOW
}

/**
 * Whether a request WITHOUT a job token must prove the Maintainer role: the project set the
 * route's operation explicitly (`write`, or `delete` — which follows `write` when unset) for
 * the route's format (any format for the format-agnostic API). Both levels mean "Maintainers"
 * for users; unset formats and actions keep GitLab's roles (Developers may push).
 */
export function maintainerRequired (route: CatalogRoute, grants: ProjectGrants | null): boolean {
  const { packageFormat: format, packageOperation: operation } = route
  const rules = grants?.packageRules
  if (format === undefined || operation === undefined || operation === 'read' || rules === undefined) return false
  const formats = format === ANY_PACKAGE_FORMAT ? Object.keys(rules) : [format]
  return formats.some(name => {
    const rule = rules[name]
    if (rule === undefined) return false
    return operation === 'write' ? rule.write !== undefined : (rule.delete ?? rule.write) !== undefined
  })
}
