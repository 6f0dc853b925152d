// Per package format rules bind users too: where a project set `write`/`delete` for a format,
// only users with the Maintainer role or higher may do it (both "maintainer" and
// "job_token_and_maintainer" name Maintainers). For a request without a job token on such a
// route, the gate asks GitLab for the caller's role with the caller's own credential (cached
// 30 s by token hash, as for the configuration API). Every credential GitLab could take the
// request from counts, wherever it was sent (headers, query, an inspected form/JSON/multipart
// body: GitLab reads `private_token` and `access_token` from the body before the headers), and
// each must belong to a Maintainer. Credentials that are not a user's (deploy tokens) cannot
// prove a role and are refused; a request with no credential at all is left to GitLab, which
// refuses anonymous writes.

import type { ErrorCode } from '../errors.ts'
import type { GrantCache } from '../grants/cache.ts'
import { tokenKey } from '../identity/cache.ts'
import type { Credential } from '../identity/credentials.ts'
import { maintainerRequired } from '../policy/package-check.ts'
import { accessedProject } from '../routing/accessed.ts'
import type { RouteMatch } from '../routing/router.ts'
import { MAINTAINER_ACCESS, type GitlabClient } from './auth.ts'

export interface UserRoleCheck {
  /**
   * null: go on (no rule, or the caller is a Maintainer); otherwise the refusal. Only for
   * requests without a job token to a project package route.
   */
  check (input: { match: RouteMatch, credentials: readonly Credential[] }): Promise<{ code: ErrorCode, message?: string } | null>
}

export function createUserRoleCheck (gitlab: GitlabClient, grants: GrantCache): UserRoleCheck {
  return {
    async check ({ match, credentials }) {
      const route = match.route
      if (route.packageFormat === undefined || route.packageOperation === 'read') return null
      const accessed = accessedProject(match)
      let projectId: number | null
      if (accessed.kind === 'project_id') projectId = accessed.id
      else if (accessed.kind === 'project_path') projectId = await grants.resolvePath(accessed.path)
      else return null
      if (projectId === null || !maintainerRequired(route, await grants.get(projectId))) return null
      if (credentials.length === 0) return null
      const refusal = {
        code: 'PACKAGE_MAINTAINER_ONLY' as const,
        message: `403 Forbidden - only users with the Maintainer role or higher may ${route.packageOperation!} ${route.packageFormat} packages of project #${projectId} (job token permissions).`
      }
      for (const credential of new Map(credentials.map(c => [c.secret, c])).values()) {
        if (credential.where === 'header:deploy-token') return refusal
        const header: Record<string, string> = credential.source === 'bearer' || /access_token|bearer_token/.test(credential.where)
          ? { authorization: `Bearer ${credential.secret}` }
          : { 'private-token': credential.secret }
        const found = await gitlab.project(String(projectId), header, tokenKey(credential.secret))
        if (found.kind === 'unavailable') return { code: 'ROLE_CHECK_UNAVAILABLE' }
        if (found.kind !== 'found' || found.accessLevel < MAINTAINER_ACCESS) return refusal
      }
      return null
    }
  }
}
