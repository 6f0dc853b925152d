// What decide() needs to know of an accessed project beyond its grants: its short path (GitLab's
// 403 messages name it), its visibility and its features' access levels (public and internal
// projects: docs/gitlab-rules.md, "Public and internal projects"). Read from GitLab's
// `GET /api/v4/projects/:id` with the service token (without one: anonymously, which shows public
// projects only), cached with a TTL, single flight and an injectable clock, as the project finder is
// (src/projects/finder.ts). Fails closed: no answer is a 503, an answer the gate
// cannot read a 502, never an allow. Only asked for by decisions that need it (the decide stage of
// src/gate/pipeline.ts): an allowed request the store already decides never waits for it.

import { answersAsked, type GitlabClient } from '../gitlab/client.ts'
import { createLoaderCache, tokenKey, ttlClock, type Clock } from '../identity/cache.ts'
import { countedLru } from '../lru.ts'
import { apiSegment } from '../text.ts'
import { SharedLoads, type Waiter } from '../waiters.ts'
import { lookupError, mapUnavailable, movedProjectPath, unavailableOn } from './finder.ts'

/** GitLab's project visibility (`visibility` in the projects API). */
export type Visibility = 'private' | 'internal' | 'public'

/**
 * A project feature's access level as the projects API writes it (`*_access_level`;
 * ProjectFeature's DISABLED 0, PRIVATE 10, ENABLED 20, PUBLIC 30).
 */
export type FeatureAccessLevel = 'disabled' | 'private' | 'enabled' | 'public'

export interface ProjectFacts {
  readonly id: number
  /** The short path (`project.path`), which GitLab's 403 messages name; null when GitLab did not show the project. */
  readonly path: string | null
  readonly fullPath: string | null
  readonly visibility: Visibility
  /**
   * Access level by ProjectFeature name (`package_registry`, `container_registry`, `builds`,
   * `releases`, `environments`, `repository`, `issues`, ...); a feature not listed reads as disabled.
   */
  readonly features: Readonly<Record<string, FeatureAccessLevel>>
}

export interface ProjectFactsLookup {
  /**
   * The facts of a project by id or full path: synchronously when cached (the hot path), else a
   * promise that rejects with GateError when GitLab cannot tell. A project GitLab does not show
   * the gate's token is private to it: `visibility: 'private'`, no path (and id 0 when asked by
   * path). A path is the project GitLab routes it to now: matched case-insensitively, a moved
   * project's old path followed while no project holds it, as `find_project` does. `waiter`: the
   * request's client (none: one that never goes); a lookup every client waiting for has left is
   * given up (LookupDropped), its GitLab call aborted, nothing kept.
   */
  get (project: number | string, waiter?: Waiter): ProjectFacts | Promise<ProjectFacts>
  /**
   * Whether the job's user is one of GitLab's external users (`external`, which `GET /users/:id`
   * shows a caller that can read all resources: an administrator in Admin Mode, an auditor), whom
   * ProjectPolicy keeps out of internal projects they are not let into otherwise (`internal_access`);
   * null when GitLab does not show it. Cached as the facts are; a promise that rejects with
   * GateError when GitLab cannot tell; given up as get() is.
   */
  userExternal (userId: number, waiter?: Waiter): boolean | null | Promise<boolean | null>
  /** Whether GitLab is asked with the service token: without it only public projects are shown. */
  readonly seesPrivate: boolean
  stats (): { hits: number, misses: number }
}

export interface ProjectFactsOptions {
  readonly gitlab: GitlabClient
  /** How long facts are kept. Default 60 s (GATE_PROJECT_LOOKUP_TTL_MS). */
  readonly ttlMs?: number
  readonly max?: number
  readonly clock?: Clock
}

const LEVELS: ReadonlySet<string> = new Set(['disabled', 'private', 'enabled', 'public'])
const VISIBILITIES: ReadonlySet<string> = new Set(['private', 'internal', 'public'])
const SUFFIX = '_access_level'

export function createProjectFactsLookup (options: ProjectFactsOptions): ProjectFactsLookup {
  const { gitlab } = options
  // Without a service token the call is anonymous: GitLab then shows public projects only, so an
  // internal project reads as private and keeps the stricter answer.
  const as = gitlab.hasServiceToken ? 'service' as const : {}
  const facts = countedLru<string, ProjectFacts>(options.max ?? 10_000, { ttl: options.ttlMs ?? 60_000, ...ttlClock(options.clock) })
  // "GitLab shows no project here" is kept apart: any client can ask about as many made-up paths
  // as it likes, and in one list those answers would push out the projects real jobs use. So are
  // the loads in flight (single flight): lru-cache's fetch() holds a place in its list for each,
  // and a flood of made-up paths at once pushed the projects found out before any answer came.
  const notShown = countedLru<string, ProjectFacts>(options.max ?? 10_000, { ttl: options.ttlMs ?? 60_000, ...ttlClock(options.clock) })
  // A lookup nobody waits for any more is given up (src/waiters.ts): any client can have made-up
  // paths looked up, and such lookups held to their end by a GitLab slow to answer, their clients
  // gone, held every connection of the GitLab client's bounded pool, a running job's token waiting
  // behind them.
  const loading = new SharedLoads<ProjectFacts>()
  const fetchFacts = (key: string, project: number | string, waiter: Waiter | undefined): Promise<ProjectFacts> =>
    loading.join(key, waiter) ?? loading.start(key, waiter, async signal => await load(project, signal), {
      value: found => {
        if (found.path === null) {
          notShown.set(key, found)
        } else {
          facts.set(key, found)
          // Found by path: the id's entry is the same project.
          if (typeof project === 'string') facts.set(`id:${found.id}`, found)
        }
      }
    })
  const counts = { hits: 0, misses: 0 }

  const ask = async (path: string, signal: AbortSignal, endpoint = 'project_facts'): Promise<{ status: number, body: Readonly<Record<string, unknown>> | undefined, location?: string }> => {
    let answer
    try {
      answer = await gitlab.get(path, { endpoint, as, signal })
    } catch (err) {
      throw mapUnavailable(err, path)
    }
    unavailableOn(answer.status, path)
    return answer
  }

  const load = async (project: number | string, signal: AbortSignal): Promise<ProjectFacts> => {
    const path = `/api/v4/projects/${apiSegment(String(project))}`
    let answer = await ask(path, signal)
    if ((answer.status === 301 || answer.status === 302) && typeof project === 'string') {
      // A moved project's old path names it while no project holds that path (find_project follows
      // redirects for /projects/:id routes, lib/api/helpers.rb); GitLab may answer it with a
      // redirect to /projects/<id>, which is followed once, to an id only.
      answer = await ask(movedProjectPath(answer.location, path), signal)
    }
    const { status, body } = answer
    // Not shown (or a redirect by id, which names no project): nothing public here.
    if (status === 404 || status === 301 || status === 302) return hidden(typeof project === 'number' ? project : 0)
    if (status !== 200 || body === undefined) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered ${status}`)
    const found = read(body, path)
    if (!answersAsked(String(project), found.id)) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered project ${found.id}`)
    return found
  }

  // By user id; one load per user at a time; a failure is not kept.
  const external = createLoaderCache<boolean | null>({ max: options.max ?? 10_000, ttlMs: options.ttlMs ?? 60_000, ...(options.clock === undefined ? {} : { clock: options.clock }) })
  const loadUser = async (userId: number, signal: AbortSignal): Promise<boolean | null> => {
    // Without the service token nothing is shown, and no internal project is either.
    if (!gitlab.hasServiceToken) return null
    const path = `/api/v4/users/${userId}`
    const { status, body } = await ask(path, signal, 'job_user')
    if (status === 404) return null
    if (status !== 200 || body === undefined) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered ${status}`)
    if (body.id !== userId) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered user ${String(body.id)}`)
    return typeof body.external === 'boolean' ? body.external : null
  }

  return {
    userExternal (userId, waiter) {
      const key = String(userId)
      const hit = external.cached(key)
      return hit !== undefined ? hit : external.get(key, async signal => await loadUser(userId, signal), waiter)
    },
    get (project, waiter) {
      // Hot path: a cached answer is one get(), no promise.
      const key = typeof project === 'number' ? `id:${project}` : pathKey(project)
      const hit = facts.get(key) ?? notShown.get(key)
      if (hit !== undefined) {
        counts.hits++
        return hit
      }
      counts.misses++
      return fetchFacts(key, project, waiter)
    },
    seesPrivate: gitlab.hasServiceToken,
    stats: () => ({ ...counts })
  }
}

/** The facts of a project GitLab does not show: private, as far as the gate can tell. */
function hidden (id: number): ProjectFacts {
  return Object.freeze({ id, path: null, fullPath: null, visibility: 'private', features: Object.freeze({}) })
}

function read (body: Readonly<Record<string, unknown>>, path: string): ProjectFacts {
  const id = body.id
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered no project id`)
  const visibility = body.visibility
  // A project without a visibility GitLab's way cannot be shown public: fail closed, loudly.
  if (typeof visibility !== 'string' || !VISIBILITIES.has(visibility)) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered no visibility`)
  const features: Record<string, FeatureAccessLevel> = {}
  for (const [key, value] of Object.entries(body)) {
    if (key.endsWith(SUFFIX) && typeof value === 'string' && LEVELS.has(value)) features[key.slice(0, -SUFFIX.length)] = value as FeatureAccessLevel
  }
  return Object.freeze({
    id,
    path: typeof body.path === 'string' ? body.path : null,
    fullPath: typeof body.path_with_namespace === 'string' ? body.path_with_namespace : null,
    visibility: visibility as Visibility,
    features: Object.freeze(features)
  })
}

/**
 * A path's cache key (pathKey): its ASCII letters folded (asciiLower), and past 64 characters its
 * SHA-256. Kept whole, made-up paths of up to the 2,048 characters the gate looks up, named by a
 * user's package write with any cookie (looked up before any credential is asked about), held
 * 4 KiB each in the cache of "no project here" until pushed out: 3,000 grew the heap by 12 MiB,
 * the cache full some 40 MiB.
 */
function pathKey (path: string): string {
  const folded = asciiLower(path)
  return folded.length > 64 ? `path#${tokenKey(folded)}` : `path:${folded}`
}

/**
 * A path's fold: ASCII letters folded, as every collation's LOWER() folds them, and nothing
 * else. JavaScript also folds the Kelvin sign onto "k", which PostgreSQL does only under some
 * collations: one key for both would let a request naming `acme/\u212Ait` (no project to a GitLab
 * whose database collates as "C") store "no project" for `acme/kit` too.
 */
function asciiLower (path: string): string {
  return path.replace(/[A-Z]+/g, s => s.toLowerCase())
}
