// Per package format rules bind users too: where a project set `write`/`delete` for a format,
// only users with the Maintainer role or higher may do it (both "maintainer" and
// "job_token_and_maintainer" name Maintainers). For a request without a job token on such a
// route, the gate asks GitLab for the caller's role with the caller's own credential (cached
// 30 s by token hash, as for the configuration API). Every credential GitLab could take the
// request from counts, wherever it was sent (headers, query, an inspected form/JSON/multipart
// body: GitLab reads `private_token` and `access_token` from the body before the headers), and
// each must belong to a Maintainer. Credentials that are not a user's (deploy tokens) cannot
// prove a role and are refused. GitLab's API also signs a browser session in (the session cookie
// with its CSRF token, last in its precedence): cookies GitLab signs a user in with are that
// user's credential too. A request with no credential at all is left to GitLab, which refuses
// anonymous writes.

import type { ErrorCode } from '../errors.ts'
import type { GrantCache } from '../grants/cache.ts'
import { mayNameProject, namesProjectTooLong, type UnknownProjectMode } from '../grants/model.ts'
import { tokenKey } from '../identity/cache.ts'
import type { Credential } from '../identity/credentials.ts'
import { maintainerRequired } from '../policy/package-check.ts'
import { accessedProject } from '../routing/accessed.ts'
import type { RouteMatch } from '../routing/router.ts'
import type { Waiter } from '../waiters.ts'
import { MAINTAINER_ACCESS, type GitlabClient } from './auth.ts'

/**
 * Most distinct credentials whose role is asked of GitLab for one request. Each is one call to
 * GitLab, not cached when GitLab refuses it: a PRIVATE-TOKEN header of 3,000 comma-separated
 * made-up tokens (no credential needed) once made 3,000 calls. No client sends more than a few.
 */
export const MAX_ROLE_CREDENTIALS = 8

export interface UserRoleCheck {
  /**
   * null: go on (no rule, or the caller is a Maintainer); otherwise the refusal. For a package
   * route's users: requests without a job token, and the session of cookies beside one.
   * `client`: the request's (none: one that never goes); the lookups it waits for are given up
   * once every client waiting for them has gone (LookupDropped).
   */
  check (input: { match: RouteMatch, credentials: readonly Credential[], cookie?: string, webSession?: boolean, bodyHidden?: boolean, session?: SessionAnswer, client?: Waiter | undefined }): Promise<{ code: ErrorCode, message?: string } | null>
}

/**
 * Whom a request's cookies sign in, as GitLab answered (not cached): handed to each check of one
 * request with the same cookies, so that GitLab is asked once, not once per project checked.
 */
export interface SessionAnswer {
  signedIn?: Promise<boolean | 'refused' | 'unavailable'>
}

/**
 * The project a group or instance package route writes to, found as for job tokens
 * (src/projects/finder.ts): its id, null when GitLab would find none, 'uncertain' when GitLab
 * finds one the gate cannot name.
 */
export type ProjectOfRoute = (match: RouteMatch, client?: Waiter) => Promise<number | null | 'uncertain'>

/**
 * `projectOfPath`: the project GitLab routes a full path to now, as the gate's project lookup
 * finds it (src/projects/facts.ts, with the service token), or null when GitLab shows the gate
 * none there. `projectOfRoute`: absent (GATE_UNRESOLVED_PROJECT defer or deny), group and
 * instance routes are not looked up.
 */
export function createUserRoleCheck (gitlab: GitlabClient, grants: GrantCache, projectOfPath?: (path: string, client?: Waiter) => Promise<number | null>, projectOfRoute?: ProjectOfRoute, unknownProject: UnknownProjectMode = 'empty_allowlist'): UserRoleCheck {
  return {
    async check ({ match, credentials, cookie, webSession = false, bodyHidden = false, session: asked = {}, client }) {
      const route = match.route
      if (route.packageFormat === undefined || route.packageOperation === 'read') return null
      const accessed = accessedProject(match)
      if (accessed.kind !== 'project_id' && accessed.kind !== 'project_path' && accessed.kind !== 'unknown') return null
      // The cookies, as Puma hands them to Rails, stand for a session GitLab may sign in with.
      const session: Credential[] = cookie === undefined ? [] : [{ secret: cookie, jobToken: false, source: 'header', where: SESSION }]
      // A body the gate cannot see (forward-auth) may hold a credential GitLab reads first.
      if (credentials.length === 0 && session.length === 0 && !bodyHidden) return null
      // One check per way of asking GitLab (askedAs), never one per text: the same text in two
      // places may be two credentials to GitLab, and the one kept in place of the other went unasked.
      const users = [...new Map([...credentials, ...session].map(c => [askedAs(c), c])).values()]
      /**
       * Cookies that sign no user in are no credential (a load balancer's, a theme): asked once per
       * request. A session GitLab's API refuses (403) is no one on the API's routes, which refuse it
       * too; GitLab's web UI signs it in all the same (`webSession`: its terms of service hold HTML
       * pages only), so there it is someone whose role the API will not show: refused below.
       */
      const noSession = async (credential: Credential): Promise<boolean | 'unavailable'> => {
        if (credential.where !== SESSION) return false
        const answer = await (asked.signedIn ??= gitlab.signedIn(headerOf(credential), client))
        if (answer === 'refused') return !webSession
        return answer === 'unavailable' ? answer : !answer
      }
      const hiddenBody = { code: 'BODY_NOT_VISIBLE' as const, message: '403 Forbidden - this request has a form, JSON or multipart body the gate cannot see, and GitLab reads a `private_token` or `access_token` there before the headers, whose role the project\'s package rules must check; send such requests through the gate proxy, or have the front proxy pass bodies to the gate' }
      const tooMany = { code: 'CREDENTIAL_AMBIGUOUS' as const, message: `401 Unauthorized - more than ${MAX_ROLE_CREDENTIALS} different credentials in the request; send exactly one` }
      const refusal = (projectId: number): { code: ErrorCode, message: string } => ({
        code: 'PACKAGE_MAINTAINER_ONLY',
        message: `403 Forbidden - only users with the Maintainer role or higher may ${route.packageOperation!} ${route.packageFormat} packages of project #${projectId} (job token permissions).`
      })
      /** Every credential must be a Maintainer of `projectId` where its rules ask for one. */
      const checkProject = async (projectId: number): Promise<{ code: ErrorCode, message?: string } | null> => {
        if (!maintainerRequired(route, await grants.get(projectId))) return null
        if (bodyHidden) return hiddenBody
        if (users.length > MAX_ROLE_CREDENTIALS) return tooMany
        for (const credential of users) {
          if (credential.where === 'header:deploy-token') return refusal(projectId)
          const skip = await noSession(credential)
          if (skip === 'unavailable') return { code: 'ROLE_CHECK_UNAVAILABLE' }
          if (skip) continue
          const found = await gitlab.project(String(projectId), headerOf(credential), tokenKey(credential.secret), client)
          if (found.kind === 'unavailable') return { code: 'ROLE_CHECK_UNAVAILABLE' }
          if (found.kind !== 'found' || found.accessLevel < MAINTAINER_ACCESS) return refusal(projectId)
        }
        return null
      }
      if (accessed.kind === 'project_id') return await checkProject(accessed.id)
      if (accessed.kind === 'unknown') {
        // A group or instance package route (a Conan upload or delete through the instance API, an
        // npm dist-tag write through the instance or group API) writes to the project GitLab's
        // handler finds: that project's rules bind it as they bind its /projects/:id routes.
        if (projectOfRoute === undefined) return null
        const id = await projectOfRoute(match, client)
        if (id === 'uncertain') return { code: 'PACKAGE_PROJECT_UNCERTAIN', message: '403 Forbidden - the gate cannot tell for sure which project GitLab would write this package to, so its package rules cannot be checked; use the project\'s own package endpoint (/projects/:id/packages/...)' }
        return id === null ? null : await checkProject(id)
      }
      // A path is the project GitLab routes it to now, never the store's path index alone (a
      // renamed project's old path may be another project's now).
      // Any segment holding a '/' may be a project's path to GitLab (mayNameProject), one too
      // long for the gate to look up as well: refused, never left unchecked.
      if (namesProjectTooLong(accessed.path)) return { code: 'PROJECT_PATH_TOO_LONG' }
      if (!mayNameProject(accessed.path)) return null
      const id = projectOfPath === undefined ? null : await projectOfPath(accessed.path, client)
      if (id !== null) return await checkProject(id)
      // GitLab shows the gate no project there (no service token, or one that sees less): each
      // credential's own view names the project GitLab would take the request to, and the store's
      // hint, unverified, may only add a project to check, never let a request through.
      if (users.length > MAX_ROLE_CREDENTIALS) return tooMany
      const candidates = new Set<number>()
      const hinted = await grants.resolvePath(accessed.path)
      if (hinted !== null) candidates.add(hinted)
      // A credential GitLab's API signs no user in with (a deploy token, in its header or as
      // Basic), or refuses the project lookup (403), may still write packages: it cannot show
      // which project the path names.
      let unseen = bodyHidden
      for (const credential of users) {
        if (credential.where === 'header:deploy-token') {
          unseen = true
          continue
        }
        const skip = await noSession(credential)
        if (skip === 'unavailable') return { code: 'ROLE_CHECK_UNAVAILABLE' }
        if (skip) continue
        // A web session GitLab's API refuses shows no project either, as a deploy token does not.
        if (credential.where === SESSION && await asked.signedIn === 'refused') {
          unseen = true
          continue
        }
        const found = await gitlab.project(encodeURIComponent(accessed.path), headerOf(credential), tokenKey(credential.secret), client)
        if (found.kind === 'unavailable') return { code: 'ROLE_CHECK_UNAVAILABLE' }
        if (found.kind === 'found') candidates.add(found.id)
        // A credential GitLab's API refuses this lookup (403: a personal access token without
        // `api` or `read_api`) may still write packages where GitLab checks no scope
        // (`authenticate_with` routes): it shows no project, as a deploy token does not.
        if (found.kind === 'unauthenticated' || (found.kind === 'not_found' && found.refused === true)) unseen = true
      }
      // No project named, and a credential that may write to one the gate cannot see (a stored
      // project renamed since its last write claims only its old path): refused as a job token
      // naming that path is, unless unknown projects are left to GitLab.
      if (candidates.size === 0 && unseen && unknownProject !== 'allow') return bodyHidden ? hiddenBody : { code: 'PROJECT_LOOKUP_UNVERIFIED', message: '403 Forbidden - GitLab showed the gate no project at this path, and a deploy token, a token GitLab\'s API will not answer the project lookup, or a browser session GitLab\'s API refuses, cannot show which project it writes to, so that project\'s package rules cannot be checked; name the project by its id' }
      for (const candidate of candidates) {
        const refused = await checkProject(candidate)
        if (refused !== null) return refused
      }
      return null
    }
  }
}

const SESSION = 'header:cookie'

/**
 * How a credential is asked of GitLab: the header it is sent in and its text, a deploy token (never
 * asked) apart. Told apart by their text alone, a Developer's PRIVATE-TOKEN sent again as the whole
 * Cookie header was asked as cookies, which sign no one in, and again as `Deploy-Token` was taken
 * for a deploy token, which shows no project; and an OAuth token as Bearer, sent again as
 * PRIVATE-TOKEN, was asked only there, where GitLab does not take it: each went unchecked.
 */
function askedAs (credential: Credential): string {
  if (credential.where === 'header:deploy-token') return `deploy-token ${credential.secret}`
  const [name, value] = Object.entries(headerOf(credential))[0]!
  return `${name} ${value}`
}

function headerOf (credential: Credential): Record<string, string> {
  if (credential.where === SESSION) return { cookie: credential.secret }
  return credential.source === 'bearer' || /access_token|bearer_token/.test(credential.where)
    ? { authorization: `Bearer ${credential.secret}` }
    : { 'private-token': credential.secret }
}
