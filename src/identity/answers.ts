// The answers of the identity stage: status, headers and GitLab's JSON body for each failure.

import type { CatalogRoute } from '../catalog/types.ts'
import { errorBody, errors, type ErrorCode } from '../errors.ts'

export interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: { readonly message: string, readonly code: ErrorCode }
}

/**
 * Package formats whose clients authenticate with HTTP Basic, and whose GitLab endpoints answer
 * a 401 with `WWW-Authenticate: Basic realm="GitLab Packages Registry"` so those clients retry
 * with credentials (lib/api/helpers/packages/basic_auth_helpers.rb and the format APIs): Maven,
 * PyPI, generic packages, Terraform state, NuGet, Composer, Conan, plus Helm and Debian, which
 * GitLab also serves behind Basic auth. Decided from the catalog pattern, once per route.
 */
const BASIC_AUTH_PATTERNS = [
  '/packages/maven/',
  '/packages/pypi',
  '/packages/generic/',
  '/terraform/state/',
  '/packages/nuget',
  '/packages/composer',
  '/packages/conan/',
  '/packages/helm/',
  '/packages/debian/'
]

export const BASIC_AUTH_REALM = 'Basic realm="GitLab Packages Registry"'

export function isBasicAuthRoute (route: CatalogRoute | null): boolean {
  if (route === null) return false
  const pattern = route.pattern
  return BASIC_AUTH_PATTERNS.some(p => pattern.includes(p))
}

/** The answer for a failure code on a route (null when unmatched). */
export function identityAnswer (code: ErrorCode, route: CatalogRoute | null): Answer {
  const { status } = errors[code]
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (status === 401 && isBasicAuthRoute(route)) headers['www-authenticate'] = BASIC_AUTH_REALM
  if (status === 503) headers['retry-after'] = '5'
  return { status, headers, body: errorBody(code) }
}
