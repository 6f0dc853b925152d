// Finds the accessed project of a group, instance or job route through GitLab's REST API with
// the service token, as GitLab's own handler finds it (src/projects/lookup.ts says which call;
// docs/gitlab-rules.md, "Group and instance routes"). Answers are cached as the identity caches
// are (src/identity/cache.ts): a TTL, single flight, and "no project" kept briefly, apart from the
// projects found; failures are not kept. Fails closed: no answer from GitLab is a 503, an answer the
// gate cannot read a 502, never an allow.

import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { CatalogRoute } from '../catalog/types.ts'
import { GateError } from '../errors.ts'
import { answersAsked, GitlabUnavailable, movedProjectId, type GitlabClient } from '../gitlab/client.ts'
import { createLoaderCache, ttlClock, type Clock, type LoaderCacheStats } from '../identity/cache.ts'
import type { JobIdentity } from '../identity/types.ts'
import { countedLru } from '../lru.ts'
import { apiSegment } from '../text.ts'
import { cacheKeyOf, lookupOf, type Lookup } from './lookup.ts'
import { LookupDropped, shareLoad, Waiters, type Waiter } from '../waiters.ts'
import { createLookupSlots, type SlotStats } from './slots.ts'

export type Found =
  /**
   * `listedIn`: every project whose packages GitLab's npm metadata of that name lists (several,
   * with npm_allow_packages_in_multiple_projects), which a metadata read serves from besides `id`.
   */
  | { readonly kind: 'project', readonly id: number, readonly listedIn?: readonly number[] }
  /** GitLab would find no project: nothing the gate guards exists there. */
  | { readonly kind: 'no_project' }
  /** No lookup can tell (see Lookup `unresolvable`), or the job is not in the token's pipeline. */
  | { readonly kind: 'unresolved' }
  /**
   * GitLab's handler finds a project, but the gate cannot tell which one for sure (npm tarballs
   * of several projects the group's package list does not all show): job tokens are refused.
   */
  | { readonly kind: 'uncertain' }

export interface ProjectFinder {
  /**
   * The project a matched group, instance or job route accesses for this job (or, without one,
   * for a user's request: a job route then stays unresolved): synchronously
   * when the answer is cached (the hot path), else a promise that rejects with GateError when
   * GitLab cannot tell. `waiter`: the request's client (none: one that never goes); a lookup
   * whose every request has gone is dropped unstarted if it waits for a slot
   * (src/projects/slots.ts), given up if it runs (its GitLab calls aborted, nothing kept), and
   * those requests' promises reject with LookupDropped.
   */
  find (route: CatalogRoute, params: Readonly<Record<string, string>>, identity?: JobIdentity, waiter?: Waiter): Found | Promise<Found>
  /**
   * Every project under a group (its subgroups' included, shared ones not: `Namespace#all_projects`,
   * which GitLab's group package finders read), by the group's id or full path as the URL names it.
   * Null when GitLab has no such group or namespace; 'too_many' when it has more than the gate
   * reads, or is a namespace that is no group (a user's), whose projects the gate does not list. Rejects
   * with GateError when GitLab cannot tell (a service token that does not see every project, whose
   * listing may leave some out: PROJECT_LOOKUP_UNVERIFIED). A listing not kept takes its turn in slots, as
   * Maven's do: `owner` the job asking ('' for none), `waiter` its client, as find() takes them.
   */
  groupProjects (group: string, owner?: string, waiter?: Waiter): Promise<readonly number[] | null | 'too_many'>
  /**
   * Every project a Maven virtual registry serves files from besides its remote upstreams: its
   * local upstreams' projects, and the projects under its local upstreams' groups. Null when
   * GitLab has no such registry; 'too_many' as groupProjects says. Rejects with GateError when
   * GitLab cannot tell. `waiter`: as groupProjects takes it.
   */
  registryLocalProjects (registry: number, owner?: string, waiter?: Waiter): Promise<readonly number[] | null | 'too_many'>
  stats (): ProjectFinderStats
}

export interface ProjectFinderStats {
  readonly projects: { hits: number, misses: number }
  readonly pipelines: LoaderCacheStats
  /** The slots of GitLab's npm metadata, of Maven package listings and of groups' project listings (createLookupSlots). */
  readonly slots: { readonly npm_metadata: SlotStats, readonly maven_listings: SlotStats, readonly group_listings: SlotStats }
}

export interface ProjectFinderOptions {
  readonly gitlab: GitlabClient
  /** How long a found project is kept. Default 60 s. */
  readonly ttlMs?: number
  /** How long "no project" is kept. Default 10 s, at most ttlMs. */
  readonly notFoundTtlMs?: number
  readonly max?: number
  /** Most key characters (plus 64 per entry) the found-project cache holds. Default 4 Mi. */
  readonly maxKeyBytes?: number
  /** Most packages the kept Maven package listings hold together. Default 50,000. */
  readonly maxListedPackages?: number
  /** Pages of 100 read from a package or job list. Default 10. */
  readonly maxPages?: number
  readonly clock?: Clock
}

const UNRESOLVED: Found = Object.freeze({ kind: 'unresolved' })
const NO_PROJECT: Found = Object.freeze({ kind: 'no_project' })
const UNCERTAIN: Found = Object.freeze({ kind: 'uncertain' })
const projectFound = (id: number, listedIn?: readonly number[]): Found =>
  Object.freeze(listedIn === undefined ? { kind: 'project', id } : { kind: 'project', id, listedIn: Object.freeze([...listedIn]) })

export function createProjectFinder (options: ProjectFinderOptions): ProjectFinder {
  const { gitlab } = options
  const ttlMs = options.ttlMs ?? 60_000
  const notFoundTtlMs = Math.min(options.notFoundTtlMs ?? 10_000, ttlMs)
  const maxPages = options.maxPages ?? 10
  const clock = options.clock === undefined ? {} : { clock: options.clock }
  // What a lookup found, by lookup. Hot path: a hit is one synchronous get(), no promise; a miss
  // is one load shared by concurrent requests. Keys are the client's URL parameters (a Maven path
  // of up to 8 KiB), and entries past their TTL stay until evicted: bounded by the bytes of their
  // keys too, not by their number alone. The projects found are kept apart from the other answers
  // ("no project", found briefly), and the loads in flight apart from both: any client can have
  // made-up names looked up (a Conan write with any Cookie), and in one list those answers, or
  // lru-cache's fetch() holding a place for each load, pushed out the projects jobs use.
  const entries = { max: options.max ?? 10_000, maxSize: options.maxKeyBytes ?? KEY_BYTES, sizeCalculation: (_found: Found, key: string) => key.length + 64, ...ttlClock(options.clock) }
  const found = keptApart<Found>(new LRUCache({ ...entries, ttl: ttlMs }), new LRUCache({ ...entries, ttl: notFoundTtlMs }), f => f.kind === 'project')
  const now = (): number => (options.clock ?? performance).now()
  /**
   * An answer's TTL, less the age of what it was decided on where that was read before its lookup
   * began (`since.at`: a Maven package listing kept for other paths of the name), so that no
   * answer kept is older than its TTL.
   */
  const ttlOf = (answer: Found, since: Since): number =>
    (answer.kind === 'project' ? ttlMs : notFoundTtlMs) - (since.at === undefined ? 0 : now() - since.at)
  /** One load per key at once, wanted while any of the requests sharing it waits. */
  const shared = (key: string, ask: Ask, waiter: Waiter | undefined): Promise<Found> => {
    const since: Since = {}
    return found.load(key, (waiters, signal) => ask(since, waiters, signal), answer => ttlOf(answer, since), waiter)
  }
  const counts = { hits: 0, misses: 0 }
  // GitLab's npm metadata of a name is built on each call and read whole, up to 16 MiB: at most
  // NPM_METADATA_AT_ONCE are read at once gate-wide, NPM_METADATA_WAITING more wait, and a lookup
  // past them is refused (503 PROJECT_LOOKUPS_BUSY). A job names the group as it likes (`acme`,
  // `ACME`, `0010` are one group to GitLab and as many cache keys), so reads of one name at once,
  // each its own lookup, held as many documents. A freed slot goes to the jobs in turn (src/projects/slots.ts).
  const metadataSlots = createLookupSlots(NPM_METADATA_AT_ONCE, NPM_METADATA_WAITING, WAITING_PER_JOB)
  // Whether the service token sees every project. Only then is a 404 or an empty package list
  // GitLab's "no project": a narrower token is shown less than GitLab's own handler finds, and
  // forwarding on its 404 would skip the gate's rules for a project that exists. GitLab's finders
  // show every project to a caller that can read all resources (an administrator in Admin Mode, an
  // auditor), and so does `GET /users/:id` its administrator fields (UserDetailsWithAdmin, is_admin
  // among them; lib/api/users.rb). `GET /user` cannot tell: its is_admin is the account's flag,
  // shown outside Admin Mode too, and an auditor is shown no is_auditor there. Kept long; a failed
  // check is not kept.
  const serviceRights = createLoaderCache<boolean>({ max: 1, ttlMs: 10 * 60_000, ...clock })
  const seesEveryProject = (): Promise<boolean> => serviceRights.get('self', async () => {
    const id = toId(okBody(await get('/api/v4/user', 'service_user'), '/api/v4/user').id)
    if (id === null) throw lookupError('PROJECT_LOOKUP_FAILED', 'GET /api/v4/user answered no user id')
    const body = okBody(await get(`/api/v4/users/${id}`, 'service_user'), `/api/v4/users/${id}`)
    return typeof body.is_admin === 'boolean'
  })
  // The job and bridge ids of one pipeline.
  const pipelines = createLoaderCache<ReadonlySet<number>>({ max: options.max ?? 10_000, ttlMs: notFoundTtlMs, ...clock })
  // A group's package-only projects (up to 10 pages of its projects), shared by the lookups of
  // every Maven path under it: each lookup asked anew, so a job naming many paths in one group
  // made the gate list the group's projects again for each. Keyed by the hash of the client's
  // `:id`; `at`: when it was asked, which the listings read with it are as old as.
  const hiddenProjects = createLoaderCache<{ readonly at: number, readonly ids: readonly number[] | null }>({ max: options.max ?? 10_000, ttlMs: notFoundTtlMs, ...clock })
  // Maven reads' package listings (mavenListing), by the hash of group and name: those holding
  // packages, bounded by their packages too, apart from the empty ones; and the ones being read.
  const listingMax = options.max ?? 10_000
  const listingTtl = { ttl: notFoundTtlMs, ...ttlClock(options.clock) }
  const listings = keptApart<PackageListing>(
    new LRUCache({ max: listingMax, ...listingTtl, maxSize: options.maxListedPackages ?? LISTED_PACKAGES, sizeCalculation: listing => 1 + listing.items.length }),
    countedLru(listingMax, listingTtl),
    listing => listing.items.length > 0)
  const mavenSlots = createLookupSlots(MAVEN_LISTINGS_AT_ONCE, MAVEN_LISTINGS_WAITING, WAITING_PER_JOB)
  // A package-only project's Maven packages, read whole where they fit one page, by project id
  // (wholeProjectPackages); bounded by their packages as the listings are.
  const projectPackages = keptApart<ProjectPackages>(
    new LRUCache({ max: listingMax, ...listingTtl, maxSize: options.maxListedPackages ?? LISTED_PACKAGES, sizeCalculation: whole => 1 + (whole.items?.length ?? 0) }),
    countedLru(listingMax, listingTtl),
    whole => whole.items !== null && whole.items.length > 0)
  // Every project of one group, for the package rules of reads no lookup names a project for. Kept
  // as briefly as "no project": a project moved into the group is seen within it. Keyed by the
  // hash of the client's `:id`, whose length the client chooses. A listing reads up to 10 pages of
  // the group's projects, each page held until the last, and a job names the group as it likes
  // (`acme`, `ACME`, `010`, `0010`, ... are group 10 to GitLab, and as many keys): each spelling
  // was listed at once, as many listings as requests came. They take their turn in slots, as
  // Maven's listings do: at most GROUP_LISTINGS_AT_ONCE read at once gate-wide.
  const groupListings = keptApart<GroupListing>(countedLru(listingMax, listingTtl), countedLru(listingMax, listingTtl), listing => Array.isArray(listing.ids) && listing.ids.length > 0)
  const groupSlots = createLookupSlots(GROUP_LISTINGS_AT_ONCE, GROUP_LISTINGS_WAITING, WAITING_PER_JOB)
  const groupProjects = async (group: string, owner = '', waiter?: Waiter): Promise<readonly number[] | null | 'too_many'> => {
    const key = createHash('sha256').update(group).digest('hex')
    const kept = groupListings.get(key)
    if (kept !== undefined) return kept.ids
    groupSlots.join(key, owner)
    const read = await groupListings.load(key, async (waiters, signal) => await groupSlots.run(async () => {
      const at = now()
      return { at, ids: await allGroupProjects(group, signal) }
    }, owner, key, waiters), listing => notFoundTtlMs - (now() - listing.at), waiter)
    return read.ids
  }
  // A virtual registry's local projects, kept as briefly: an upstream linked is seen within it.
  const registryProjectIds = createLoaderCache<readonly number[] | null | 'too_many'>({ max: options.max ?? 10_000, ttlMs: notFoundTtlMs, ...clock })

  // `signal`: aborted once nobody waits for the lookup the call is made for (src/waiters.ts).
  const get = async (path: string, endpoint: string, signal?: AbortSignal): Promise<{ status: number, body: Readonly<Record<string, unknown>> | undefined, location?: string }> => {
    try {
      const answer = await gitlab.get(path, { endpoint, as: 'service', ...(signal === undefined ? {} : { signal }) })
      unavailableOn(answer.status, path)
      return answer
    } catch (err) {
      throw mapUnavailable(err, path)
    }
  }
  const list = async (path: string, endpoint: string, pages = maxPages, signal?: AbortSignal): Promise<{ status: number, items: ReadonlyArray<Readonly<Record<string, unknown>>> | undefined, truncated: boolean }> => {
    try {
      const answer = await gitlab.getList(path, { endpoint, as: 'service', ...(signal === undefined ? {} : { signal }) }, { maxPages: pages })
      unavailableOn(answer.status, path)
      return answer
    } catch (err) {
      throw mapUnavailable(err, path)
    }
  }

  /** GET /projects/:id_or_path: the id, or null for 404 and for a redirect not followed. */
  const projectByPath = async (idOrPath: string, followRedirects: boolean, signal: AbortSignal): Promise<number | null> => {
    const path = `/api/v4/projects/${apiSegment(idOrPath)}`
    let answer = await get(path, 'project_lookup', signal)
    if (answer.status === 301 || answer.status === 302) {
      // GitLab answers a moved project's old path with a redirect to /projects/<id> (lib/api/helpers.rb).
      if (!followRedirects) return null
      answer = await get(movedProjectPath(answer.location, path), 'project_lookup', signal)
    }
    if (answer.status === 404) return null
    const body = okBody(answer, path)
    const id = toId(body.id)
    if (id === null) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered no project id`)
    if (!answersAsked(idOrPath, id)) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered project ${id}`)
    // GitLab may answer an old path with the moved project itself: only where GitLab's handler
    // follows redirects does that count (Maven's find_by_full_path does not).
    if (!followRedirects && !INTEGER.test(idOrPath) && String(body.path_with_namespace ?? '').toLowerCase() !== idOrPath.toLowerCase()) return null
    return id
  }

  /**
   * What GitLab's package lists answer for the lookup's name under its group, newest first:
   * `GET /groups/:id/packages` and, with `hidden` (Maven), each of the group's package-only
   * projects' own lists, which the group's leaves out. Only the packages a path of that name can
   * be are kept: the name itself (`package_name` is a fuzzy filter), and the versionless ones one
   * segment below it (the metadata of `name/<version>`). `at`: when the oldest answer was read.
   * `keptWhole` (a read's): a package-only project whose whole list is kept answers from it.
   * `asking`: the load it is read for, given up with it.
   */
  const readListing = async (lookup: Extract<Lookup, { kind: 'package' }>, hidden: boolean, asking: Asking, keptWhole = false): Promise<PackageListing> => {
    let at = now()
    const path = packageListPath(lookup)
    const { signal } = asking
    const answer = await list(path, 'package_lookup', maxPages, signal)
    if (answer.status === 404) return { outcome: 'no_group', at, items: [], truncated: false, groupTruncated: false }
    if (answer.status !== 200 || answer.items === undefined) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered ${answer.status}`)
    const items = answer.items.filter(item => nameOf(lookup, item.name)).map(keptFields)
    let truncated = answer.truncated
    if (hidden) {
      const group = createHash('sha256').update(lookup.group).digest('hex')
      const found = await hiddenProjects.get(group, async signal => ({ at: now(), ids: await repositoryDisabledProjects(lookup.group, signal) }), asking.waiters)
      at = Math.min(at, found.at)
      if (found.ids === null) return { outcome: 'too_many_hidden', at, items: [], truncated: false, groupTruncated: false }
      for (const project of found.ids) {
        const whole = keptWhole ? await wholeProjectPackages(project, asking.waiters) : { at, items: null }
        if (whole.items !== null) {
          at = Math.min(at, whole.at)
          for (const item of whole.items) if (nameOf(lookup, item.name)) items.push(item)
          continue
        }
        const own = `/api/v4/projects/${project}/packages?${path.slice(path.indexOf('?') + 1)}`
        const more = await list(own, 'package_lookup', maxPages, signal)
        if (more.status === 404) continue
        if (more.status !== 200 || more.items === undefined) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${own} answered ${more.status}`)
        for (const item of more.items) if (nameOf(lookup, item.name)) items.push(keptFields(item))
        truncated ||= more.truncated
      }
    }
    return { outcome: 'listed', at, items, truncated, groupTruncated: answer.truncated }
  }

  /**
   * Every Maven package of a package-only project, where they fit one page (100; `items` null:
   * more, asked per name), kept `notFoundTtlMs` from when read and shared by every name looked up
   * under its groups: each name once asked each such project anew, so that a made-up name cost 1 +
   * the group's package-only projects lists, where it costs the group's list alone now. What the
   * project's list answers for a name (`package_name` is a substring filter, the rest alike) is
   * the part of the whole list that name's paths can be: the same packages, no older than a
   * name's own listing may be (the listing is as old as the oldest answer it holds).
   */
  const wholeProjectPackages = async (project: number, waiter: Waiter): Promise<ProjectPackages> => projectPackages.get(String(project)) ?? await projectPackages.load(String(project), async (_waiters, signal) => {
    const at = now()
    const path = `/api/v4/projects/${project}/packages?package_type=maven&order_by=created_at&sort=desc&include_versionless=true`
    const answer = await list(path, 'package_lookup', 1, signal)
    if (answer.status === 404) return { at, items: [] }
    if (answer.status !== 200 || answer.items === undefined) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered ${answer.status}`)
    return { at, items: answer.truncated ? null : answer.items.map(keptFields) }
  }, whole => notFoundTtlMs - (now() - whole.at), waiter)

  /**
   * A Maven lookup's listing. A read takes the one kept for its group and name, or shares the one
   * being read: every path of the name (its versions, a version's files, the name's
   * maven-metadata.xml) asks the same lists, the group's and the package-only projects' (or their
   * whole lists kept), which were asked anew for each path a client named. Kept `notFoundTtlMs`
   * (what it answers is kept that much less long: ttlOf()), the ones that hold packages apart from
   * the empty ones, which made-up names fill. A write's lookup (`since` undefined) reads anew. At most
   * MAVEN_LISTINGS_AT_ONCE are read at once gate-wide, MAVEN_LISTINGS_WAITING more wait their
   * turn, and a lookup past them is refused, 503 PROJECT_LOOKUPS_BUSY. A listing is wanted while
   * the lookup of any path it serves is (`asking`): given up, waiting or read, once none is.
   */
  const mavenListing = async (lookup: Extract<Lookup, { kind: 'package' }>, since: Since | undefined, owner: string, asking: Asking): Promise<PackageListing> => {
    if (since === undefined) return await mavenSlots.run(async () => await readListing(lookup, true, asking), owner, undefined, asking.waiters)
    const key = listingKeyOf(lookup)
    const read = listings.get(key) ?? await listings.load(key, async (waiters, signal) => await mavenSlots.run(async () => await readListing(lookup, true, { waiters, signal }, true), owner, key, waiters), listing => notFoundTtlMs - (now() - listing.at), asking.waiters)
    since.at = Math.min(since.at ?? Infinity, read.at)
    return read
  }

  /**
   * The newest installable package of exactly this name (and version) in the group: its project
   * id, or null. `among`: the projects GitLab's npm metadata names; every one must be in the list
   * (GET /groups/:id/packages leaves out projects whose repository is disabled, and cannot list a
   * user's namespace), and the newest must be one of them, else UNCERTAIN_ID.
   */
  const packageProject = async (lookup: Extract<Lookup, { kind: 'package' }>, asking: Asking, among?: ReadonlySet<number>, since?: Since, owner = ''): Promise<number | null> => {
    const path = packageListPath(lookup)
    // Maven's finder (Packages::Maven::PackageFinder) takes packages of every project under the
    // group, while the group's list leaves out projects whose repository is disabled (package-only
    // projects): their packages are read from each such project's own list. (npm's helper is
    // asked directly, and a project it names that this list lacks is uncertain: `among`.)
    const listing = among === undefined && lookup.format === 'maven' ? await mavenListing(lookup, since, owner, asking) : await readListing(lookup, false, asking)
    if (listing.outcome === 'no_group') return among === undefined ? null : UNCERTAIN_ID
    if (listing.outcome === 'too_many_hidden') return UNCERTAIN_ID
    const { items, truncated } = listing
    // package_name is a fuzzy filter: compare exactly. Newest first, as asked; the order is
    // checked rather than trusted.
    let best: { readonly project: number, readonly at: string, readonly id: number } | null = null
    const listed = new Set<number>()
    for (const item of items) {
      if (item.name !== lookup.name && item.name !== lookup.versionlessName) continue
      if (item.package_type !== undefined && item.package_type !== lookup.format) continue
      if (!installable(item.status)) continue
      if (lookup.format === 'maven') {
        const versionless = item.version === null || item.version === undefined || item.version === ''
        const matches = (item.name === lookup.name && lookup.version !== undefined && item.version === lookup.version) ||
          (item.name === lookup.versionlessName && versionless)
        if (!matches) continue
      } else if (item.name !== lookup.name) continue
      const project = toId(item.project_id)
      const id = toId(item.id) ?? 0
      const at = typeof item.created_at === 'string' ? item.created_at : ''
      if (project === null) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered a package without project_id`)
      listed.add(project)
      if (best === null || at > best.at || (at === best.at && id > best.id)) best = { project, at, id }
    }
    // More pages than read, and no match among those read: a match may be further on.
    if (best === null && truncated) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} has more pages than the gate reads`)
    // GitLab takes the package whose latest file is newest (maven-metadata.xml, re-uploaded to
    // the versionless package on each publish): not the newest package. Of several projects,
    // the gate cannot tell which.
    if (lookup.byLatestFile === true && truncated) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} has more pages than the gate reads`)
    if (lookup.byLatestFile === true && listed.size > 1) return UNCERTAIN_ID
    if (among !== undefined) {
      // Read whole, or a listed project's packages may be missing from what was read.
      if (listing.groupTruncated) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} has more pages than the gate reads`)
      for (const project of among) if (!listed.has(project)) return UNCERTAIN_ID
      if (best === null || !among.has(best.project)) return UNCERTAIN_ID
    } else if (best !== null && !await seesEveryProject()) {
      // Maven: GitLab serves the newest package among the projects the job's user can read. A
      // token that does not see every project may have been shown an older one only.
      throw unverified('403 Forbidden - the gate\'s service token may not see every project, so the gate cannot tell which project\'s package GitLab serves here; GATE_SERVICE_TOKEN must belong to an administrator or auditor')
    }
    return best?.project ?? null
  }

  /**
   * The projects under a group (subgroups included, shared ones not: `Namespace#all_projects`)
   * whose repository is disabled and package registry is not: GET /groups/:id/packages leaves
   * their packages out. Null: more of them than the gate reads one by one.
   */
  const repositoryDisabledProjects = async (group: string, signal: AbortSignal): Promise<readonly number[] | null> => {
    const path = `/api/v4/groups/${apiSegment(group)}/projects?include_subgroups=true&with_shared=false`
    const answer = await list(path, 'group_projects', maxPages, signal)
    if (answer.status === 404) return []
    if (answer.status !== 200 || answer.items === undefined) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered ${answer.status}`)
    if (answer.truncated) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} has more pages than the gate reads`)
    const ids: number[] = []
    for (const item of answer.items) {
      if (item.repository_access_level === undefined) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered a project without repository_access_level`)
      if (item.repository_access_level !== 'disabled' || item.package_registry_access_level === 'disabled') continue
      const id = toId(item.id)
      if (id === null) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered a project without id`)
      ids.push(id)
    }
    // Frozen: the grant cache keeps what it answers of a listing beside it (GrantCache.anyOf).
    return Object.freeze(ids).length > MAX_REPOSITORY_DISABLED ? null : ids
  }

  const allGroupProjects = async (group: string, signal: AbortSignal): Promise<readonly number[] | null | 'too_many'> => {
    // A narrower token is shown no group where GitLab's own finder reads one, and of a group only
    // the projects it may read: the one that keeps the format from job tokens may be left out,
    // while GitLab serves its packages to a job whose user reads it.
    if (!await seesEveryProject()) throw unverified('403 Forbidden - the gate\'s service token may not see every project under this group, so the gate cannot tell whether one of them keeps these packages from job tokens; GATE_SERVICE_TOKEN must belong to an administrator or auditor')
    const path = `/api/v4/groups/${apiSegment(group)}/projects?include_subgroups=true&with_shared=false&simple=true`
    const answer = await list(path, 'group_projects', maxPages, signal)
    if (answer.status === 404) {
      // The Terraform module registry finds its namespace with find_namespace, a user's too, and
      // serves the packages of the projects in it; the groups API knows no such namespace, and
      // the gate lists no user's projects: uncertain, not "no group".
      const namespace = `/api/v4/namespaces/${apiSegment(group)}`
      const found = await get(namespace, 'group_projects', signal)
      if (found.status === 200) return 'too_many'
      if (found.status !== 404) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${namespace} answered ${found.status}`)
      return null
    }
    if (answer.status !== 200 || answer.items === undefined) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered ${answer.status}`)
    if (answer.truncated) return 'too_many'
    const ids: number[] = []
    for (const item of answer.items) {
      const id = toId(item.id)
      if (id === null) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered a project without id`)
      ids.push(id)
    }
    // Frozen: the grant cache keeps what it answers of a listing beside it (GrantCache.anyOf).
    return Object.freeze(ids)
  }

  /**
   * GET /virtual_registries/packages/maven/registries/:id/upstreams lists remote and local
   * upstreams (`upstream_type`); a local one names a project (`local_project_id`) or a group
   * (`local_group_id`), whose projects and subgroups' projects GitLab serves files from
   * (VirtualRegistries::Upstreams::Local::CheckService). A local upstream naming neither is an
   * answer the gate cannot read.
   */
  const allRegistryProjects = async (registry: number, owner: string, asking: Asking): Promise<readonly number[] | null | 'too_many'> => {
    const path = `/api/v4/virtual_registries/packages/maven/registries/${registry}/upstreams`
    const answer = await list(path, 'registry_upstreams', maxPages, asking.signal)
    if (answer.status === 404) {
      // A narrower token may not be shown a registry the job's user reads.
      if (!await seesEveryProject()) throw unverified()
      return null
    }
    if (answer.status !== 200 || answer.items === undefined) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered ${answer.status}`)
    if (answer.truncated) return 'too_many'
    const ids: number[] = []
    for (const item of answer.items) {
      if (item.upstream_type !== 'local' && item.local_project_id == null && item.local_group_id == null) continue
      const project = toId(item.local_project_id)
      const group = toId(item.local_group_id)
      if (project !== null) ids.push(project)
      else if (group !== null) {
        const found = await groupProjects(String(group), owner, asking.waiters)
        if (found === 'too_many') return 'too_many'
        if (found !== null) ids.push(...found)
      } else throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered a local upstream without local_project_id or local_group_id`)
    }
    // Frozen: the grant cache keeps what it answers of a listing beside it (GrantCache.anyOf).
    return Object.freeze(ids)
  }

  /**
   * npm instance and group routes. GitLab's handler takes the project of the last npm package of
   * that name under the @scope's root namespace (found BY PATH: an all-digit scope is a path, where
   * the groups API would read an id) or in the group, with no project feature filter
   * (lib/api/helpers/packages/npm.rb project_id_or_nil, app/finders/packages/npm/package_finder.rb).
   * GitLab's own npm metadata endpoint at the same level runs that same helper: asked as the
   * service token, its `dist.tarball` URLs name `/projects/<id>/packages/npm/...`. A redirect
   * (the request forwarded to the public registry) or a 404 is no project. Tarballs of one project:
   * that one. Of several (npm_allow_packages_in_multiple_projects): the newest in the group's
   * package list, when the list shows every one of them. 403 (the project's package registry is
   * disabled, even to an administrator), or tarballs naming none: UNCERTAIN_ID.
   */
  const npmProject = async (lookup: Extract<Lookup, { kind: 'npm_package' }>, owner: string, asking: Asking, key?: string): Promise<number | null | ListedProject> => {
    const projects = await metadataSlots.run(async () => await metadataProjects(lookup, asking.signal), owner, key, asking.waiters)
    if (projects === null || projects === UNCERTAIN_ID) return projects
    // GitLab lists the versions of the packages its caller can read (PackagesForUserFinder): a
    // narrower token is shown those of the projects it may read, and one that keeps npm reads
    // from job tokens may be left out, while the job's user is shown its versions.
    if (!await seesEveryProject()) throw unverified('403 Forbidden - the gate\'s service token may not see every project, so the gate cannot tell which projects\' packages GitLab lists here; GATE_SERVICE_TOKEN must belong to an administrator or auditor')
    if (projects.size === 1) return projects.values().next().value!
    // Several projects: GitLab takes the newest package's. The groups API reads an all-digit
    // scope as a group id, so an instance route's scope can be listed only when it is not one.
    if (projects.size === 0 || (lookup.at === 'instance' && INTEGER.test(lookup.group))) return UNCERTAIN_ID
    const id = await packageProject({ kind: 'package', group: lookup.group, format: 'npm', name: lookup.name }, asking, projects)
    return id === null || id === UNCERTAIN_ID ? id : { id, listedIn: [...projects] }
  }

  /** The projects GitLab's npm metadata of the name lists tarballs of; null: no project; UNCERTAIN_ID. */
  const metadataProjects = async (lookup: Extract<Lookup, { kind: 'npm_package' }>, signal: AbortSignal): Promise<Set<number> | null | typeof UNCERTAIN_ID> => {
    const name = apiSegment(lookup.name)
    const path = lookup.at === 'instance' ? `/api/v4/packages/npm/${name}` : `/api/v4/groups/${apiSegment(lookup.group)}/-/packages/npm/${name}`
    let answer
    try {
      answer = await gitlab.get(path, { endpoint: 'npm_metadata', as: 'service', maxResponseBytes: NPM_METADATA_MAX_BYTES, signal })
    } catch (err) {
      throw mapUnavailable(err, path)
    }
    if (answer.status === 302 || answer.status === 404) return null
    if (answer.status === 403) return UNCERTAIN_ID
    unavailableOn(answer.status, path)
    const versions = okBody(answer, path).versions
    if (versions === null || typeof versions !== 'object' || Array.isArray(versions)) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered no versions`)
    const projects = new Set<number>()
    for (const version of Object.values(versions as Record<string, unknown>)) {
      const tarball = (version as { dist?: { tarball?: unknown } } | null)?.dist?.tarball
      const id = typeof tarball === 'string' ? tarballProject(tarball) : null
      if (id === null) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered a version without a project tarball URL`)
      projects.add(id)
    }
    return projects
  }

  const pipelineJobs = (projectId: number, pipelineId: number, waiter: Waiter | undefined): Promise<ReadonlySet<number>> => pipelines.get(`${projectId}:${pipelineId}`, async signal => {
    const base = `/api/v4/projects/${projectId}/pipelines/${pipelineId}`
    const [jobs, bridges] = await Promise.all([
      list(`${base}/jobs?include_retried=true`, 'pipeline_jobs', maxPages, signal),
      list(`${base}/bridges?include_retried=true`, 'pipeline_jobs', maxPages, signal)
    ])
    const ids = new Set<number>()
    for (const answer of [jobs, bridges]) {
      if (answer.status === 404) continue
      if (answer.status !== 200 || answer.items === undefined) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${base} jobs answered ${answer.status}`)
      for (const item of answer.items) {
        const id = toId(item.id)
        if (id !== null) ids.add(id)
      }
    }
    return ids
  }, waiter)

  // The lookups of writes (below), by key: the one running, and the one every write that came
  // meanwhile waits for, with those writes. `freshSlots`: lookups of writes running or waited for, gate-wide.
  const freshLookups = new Map<string, { readonly running: Promise<Found>, next: Promise<Found> | null, nextWaiters: Waiters | null }>()
  let freshSlots = 0

  /**
   * A write's lookup, begun after the write came. A write never takes the answer of a lookup
   * already running (lru-cache's fetch() hands a forced refresh the one running, which GitLab may
   * have read before the job deleted the package that made its own project the last); it waits
   * for the next one, shared by every write of that key that came while the other ran. Any
   * client can send these writes (a made-up PRIVATE-TOKEN or any Cookie has the users' package
   * rules look the project up), and each npm lookup reads GitLab's metadata of the name (up to
   * 16 MiB, built on each call): at most MAX_FRESH_LOOKUPS run or wait gate-wide, and a write
   * past them is refused, 503 PROJECT_LOOKUPS_BUSY, never decided on an older answer. A lookup
   * is wanted while any of the writes waiting for it is (`waiter`): once none is, it is dropped if
   * it waits, given up if it runs (its GitLab calls aborted, nothing kept).
   */
  const freshly = (key: string, ask: Ask, waiter: Waiter | undefined): Promise<Found> => {
    const current = freshLookups.get(key)
    if (current?.next != null) {
      current.nextWaiters!.add(waiter)
      return current.next
    }
    if (freshSlots >= MAX_FRESH_LOOKUPS) return Promise.reject(new GateError('PROJECT_LOOKUPS_BUSY'))
    freshSlots++
    const waiters = new Waiters(waiter)
    const begin = (): Promise<Found> => {
      // Its answer refreshes the entry reads are answered from; a read's load still in flight,
      // which GitLab may have answered before, no longer fills it. One given up keeps nothing.
      // Watched from its start only: while it waits to begin, a write that comes wants it again
      // (its waiters back), and one begun whose writes have all gone is dropped by its slot.
      const given = new AbortController()
      waiters.watch(() => { if (waiters.gone && !given.signal.aborted) given.abort(new LookupDropped()) })
      const since: Since = {}
      const running = ask(since, waiters, given.signal).then(answer => {
        given.signal.throwIfAborted()
        found.keep(key, answer, ttlOf(answer, since))
        return answer
      }, (err: unknown) => { throw given.signal.aborted ? given.signal.reason : err })
      const entry = { running, next: null, nextWaiters: null }
      freshLookups.set(key, entry)
      void running.then(settledFresh, settledFresh).then(() => {
        waiters.close()
        freshSlots--
        if (freshLookups.get(key) === entry) freshLookups.delete(key)
      })
      return running
    }
    if (current === undefined) return begin()
    current.nextWaiters = waiters
    current.next = current.running.then(settledFresh, settledFresh).then(begin)
    return current.next
  }

  const cached = (key: string, load: (since: Since, asking: Asking) => Promise<number | null | ListedProject>, fresh: boolean, waiter: Waiter | undefined): Promise<Found> => {
    const ask: Ask = async (since, waiters, signal) => {
      const id = await load(since, { waiters, signal })
      if (id === UNCERTAIN_ID) return UNCERTAIN
      if (typeof id === 'object' && id !== null) return projectFound(id.id, id.listedIn)
      if (id !== null) return projectFound(id)
      if (!await seesEveryProject()) throw unverified()
      return NO_PROJECT
    }
    if (fresh) return freshly(key, ask, waiter)
    return shared(key, ask, waiter)
  }

  return {
    find (route, params, identity, waiter) {
      // Hot path: a cached answer is one key built from the raw parameters and one get().
      const key = cacheKeyOf(route.projectFrom, params)
      // A write through a package lookup is decided on the project GitLab finds now: which
      // package of a name is the last changes with a publish or a delete, which a job allowed in
      // one project of the namespace can make, and GitLab reads it on every request (npm
      // dist-tags). A project's path is not a job's to move: those stay cached.
      const fresh = route.method !== 'GET' && PACKAGE_LOOKUPS.has(route.projectFrom)
      if (key !== null && !fresh) {
        const hit = found.get(key)
        // A write is never forwarded on a "no project" kept from before it came: a project created,
        // renamed or moved to that path since (GATE_PROJECT_NOT_FOUND_TTL_MS) is the one GitLab
        // acts on, and forwarded undecided the write skipped its allowlist. Asked again, as a miss
        // is: no more calls than made-up names, each a miss, already cost.
        if (hit !== undefined && (hit.kind !== 'no_project' || route.method === 'GET')) {
          counts.hits++
          return hit
        }
        counts.misses++
      }
      const lookup = lookupOf(route.projectFrom, params)
      // Whose lookups wait for a slot (createLookupSlots): a job's own, so that one cannot take
      // every place, nor every turn. A read that shares a load waiting in another job's queue
      // (found.load(), listings.load()) waits in its own job's too: joined, that load starts in
      // whichever turn comes first, so a job that queues others' names behind its flood holds
      // them back no more than its made-up ones.
      const owner = identity === undefined ? '' : String(identity.jobId)
      if (!fresh && lookup.kind === 'npm_package') metadataSlots.join(key!, owner)
      if (!fresh && lookup.kind === 'package' && lookup.format === 'maven') mavenSlots.join(listingKeyOf(lookup), owner)
      switch (lookup.kind) {
        case 'unresolvable': return UNRESOLVED
        case 'no_project': return NO_PROJECT
        case 'project_id': return cached(key!, (_since, asking) => projectByPath(String(lookup.id), true, asking.signal), fresh, waiter)
        case 'project_path': return cached(key!, (_since, asking) => projectByPath(lookup.path, lookup.followRedirects, asking.signal), fresh, waiter)
        // A write's lookup reads GitLab's lists anew; a read may take the listing of its name kept.
        case 'package': return cached(key!, (since, asking) => packageProject(lookup, asking, undefined, fresh ? undefined : since, owner), fresh, waiter)
        case 'npm_package': return cached(key!, (_since, asking) => npmProject(lookup, owner, asking, fresh ? undefined : key!), fresh, waiter)
        case 'pipeline_job': {
          // Without a job (a user's request), no pipeline tells the job's project.
          if (identity === undefined) return UNRESOLVED
          if (lookup.jobId === identity.jobId) return projectFound(identity.jobProjectId)
          if (identity.pipelineId === undefined) return UNRESOLVED
          // A job of the token's own pipeline belongs to the job's own project: self access.
          return pipelineJobs(identity.jobProjectId, identity.pipelineId, waiter).then(jobs => jobs.has(lookup.jobId) ? projectFound(identity.jobProjectId) : UNRESOLVED)
        }
      }
    },
    groupProjects,
    registryLocalProjects: (registry, owner = '', waiter) => registryProjectIds.get(String(registry), async (signal, waiters) => await allRegistryProjects(registry, owner, { waiters, signal }), waiter),
    stats: () => ({ projects: { ...counts }, pipelines: pipelines.stats(), slots: { npm_metadata: metadataSlots.stats(), maven_listings: mavenSlots.stats(), group_listings: groupSlots.stats() } })
  }
}

// Lookups that read which package of a name is the last, not a project's path.
const PACKAGE_LOOKUPS: ReadonlySet<CatalogRoute['projectFrom']> = new Set(['npm_scope_package', 'npm_group_package', 'maven_group_package'])
// Lookups of writes running or waited for at once, gate-wide (freshly()); legitimate dist-tag
// writes are a handful at a time.
const MAX_FRESH_LOOKUPS = 8
const settledFresh = (): void => {}
// 10,000 entries of keys up to about 300 characters; long keys (a client's) share the rest.
const KEY_BYTES = 4 << 20
// Cached like an id: GitLab finds a project, which the gate cannot name for sure.
const UNCERTAIN_ID = -1
/** npm: the project found, and every project the metadata lists packages of. */
interface ListedProject { readonly id: number, readonly listedIn: readonly number[] }
// Package-only projects of one group whose Maven packages are read one project at a time; more: uncertain.
const MAX_REPOSITORY_DISABLED = 20
// Maven listings read at once gate-wide (each up to 1 + MAX_REPOSITORY_DISABLED lists, one after
// another), and lookups waiting for one (mavenSlots): a cold build asks a few names at a time per
// job (Maven's resolver five), and hundreds of jobs' builds through one replica wait their turn.
const MAVEN_LISTINGS_AT_ONCE = 8
const MAVEN_LISTINGS_WAITING = 1024
// Packages the kept Maven listings hold (a few hundred bytes each).
const LISTED_PACKAGES = 50_000
// Groups' project listings read at once gate-wide, and waiting for one (groupSlots): each up to
// 10 pages of 100 projects, as a Maven listing is, and as many as Maven's.
const GROUP_LISTINGS_AT_ONCE = 8
const GROUP_LISTINGS_WAITING = 1024

/** groupProjects(): every project of one group (allGroupProjects), and when it was asked. */
interface GroupListing {
  readonly at: number
  readonly ids: readonly number[] | null | 'too_many'
}

/** wholeProjectPackages(): a package-only project's Maven packages, or null where they fill more than a page. */
interface ProjectPackages {
  readonly at: number
  readonly items: ReadonlyArray<Readonly<Record<string, unknown>>> | null
}

/** A lookup's answer is as old as the oldest GitLab answer it was decided on (ttlOf()). */
interface Since { at?: number }

/**
 * The load a GitLab call is made for: `waiters`, who waits for it (for the loads it waits for in
 * turn); `signal`, aborted once nobody does (src/waiters.ts).
 */
interface Asking { readonly waiters: Waiter, readonly signal: AbortSignal }

/** A lookup's load, wanted by `waiters`, given up with them (`signal`). */
type Ask = (since: Since, waiters: Waiter, signal: AbortSignal) => Promise<Found>

/** readListing(): what GitLab's package lists answered for one name under one group. */
interface PackageListing {
  /** `no_group`: the group's list answered 404; `too_many_hidden`: more package-only projects than the gate reads. */
  readonly outcome: 'listed' | 'no_group' | 'too_many_hidden'
  /** When the oldest of its answers was read (the finder's clock). */
  readonly at: number
  readonly items: ReadonlyArray<Readonly<Record<string, unknown>>>
  /** More pages than read, in any list. */
  readonly truncated: boolean
  /** More pages than read in the group's own list. */
  readonly groupTruncated: boolean
}

/** A Maven read's kept listing, by a hash: the group and the name are the client's, of the length it chooses. */
function listingKeyOf (lookup: Extract<Lookup, { kind: 'package' }>): string {
  return createHash('sha256').update(`${lookup.group}\n${lookup.name}`).digest('hex')
}

/** `GET /groups/:id/packages` for the lookup's name, newest first (Maven: versionless packages too). */
function packageListPath (lookup: Extract<Lookup, { kind: 'package' }>): string {
  const query = `package_type=${lookup.format}&package_name=${encodeURIComponent(lookup.name)}&order_by=created_at&sort=desc` +
    (lookup.format === 'maven' ? '&include_versionless=true' : '')
  return `/api/v4/groups/${apiSegment(lookup.group)}/packages?${query}`
}

/**
 * Whether a package of this name can be the one a path of the lookup's name asks for: the name
 * itself, or (Maven) a versionless package one segment below it, `name/<version>`.
 */
function nameOf (lookup: Extract<Lookup, { kind: 'package' }>, name: unknown): boolean {
  if (typeof name !== 'string') return false
  if (name === lookup.name) return true
  return lookup.format === 'maven' && name.startsWith(`${lookup.name}/`) && !name.includes('/', lookup.name.length + 1)
}

/** The fields of a listed package a lookup reads. */
function keptFields (item: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  return { name: item.name, version: item.version, package_type: item.package_type, status: item.status, project_id: item.project_id, id: item.id, created_at: item.created_at }
}
const INTEGER = /^\d+$/
// npm metadata lists every version; GitLab's own answer for a package of a few thousand versions.
const NPM_METADATA_MAX_BYTES = 16 << 20
// npm metadata documents read at once, and lookups waiting for one of them (metadataSlots).
const NPM_METADATA_AT_ONCE = 4
// As many waiting as Maven's (below): a cold `npm ci` of many packages through one replica waits
// its turn rather than fails; waiting costs no document.
const NPM_METADATA_WAITING = 1024

/**
 * Answers kept in two LRUs by kind, `lasting` ones apart from the others (made-up keys fill the
 * other: they never push a lasting one out), and one load per key at once, held apart from both.
 * keep() also ends the load of the key in flight: a fresher answer (a write's lookup) is not
 * overwritten by one GitLab may have given before. A load in flight is handed its waiters (see
 * src/waiters.ts): `waiter` of every load() that shares it, until it settles; once every one has
 * gone it is given up (shareLoad: its signal aborted, its key free, nothing kept). A load() that
 * shared one dropped (LookupDropped) loads anew while its waiter still waits.
 */
function keptApart<V extends {}> (lasting: LRUCache<string, V>, passing: LRUCache<string, V>, lasts: (value: V) => boolean): {
  get: (key: string) => V | undefined
  keep: (key: string, value: V, ttlMs: number) => void
  load: (key: string, start: (waiters: Waiter, signal: AbortSignal) => Promise<V>, ttlOf: (value: V) => number, waiter?: Waiter) => Promise<V>
} {
  const loading = new Map<string, { readonly pending: Promise<V>, readonly waiters: Waiters }>()
  const keep = (key: string, value: V, ttlMs: number): void => {
    loading.delete(key)
    const [into, other] = lasts(value) ? [lasting, passing] : [passing, lasting]
    other.delete(key)
    // lru-cache reads a TTL of 0 as "forever": a value with less than 1 ms to live is not kept.
    const ttl = Math.floor(ttlMs)
    if (ttl >= 1) into.set(key, value, { ttl })
    else into.delete(key)
  }
  const load = (key: string, start: (waiters: Waiter, signal: AbortSignal) => Promise<V>, ttlOf: (value: V) => number, waiter?: Waiter): Promise<V> => {
    const inFlight = loading.get(key)
    if (inFlight !== undefined) {
      inFlight.waiters.add(waiter)
      // A load dropped, everyone waiting for it gone, leaves `loading` only once its rejection
      // has gone through the promises between: a request that came meanwhile shared a load
      // already dropped, and a live build was answered 503. One still waiting loads anew.
      return inFlight.pending.catch((err: unknown) => {
        if (!(err instanceof LookupDropped) || waiter?.gone === true) throw err
        return load(key, start, ttlOf, waiter)
      })
    }
    // Held to its end, a lookup its clients had all left held a connection to GitLab (and a slot)
    // for nobody, the live builds' lookups waiting behind it.
    let pending: Promise<V> | undefined
    const shared = shareLoad(waiter, async (signal, waiters) => await start(waiters, signal), () => {
      if (pending !== undefined && loading.get(key)?.pending === pending) loading.delete(key)
    })
    pending = shared.pending.then(value => {
      if (loading.get(key)?.pending === pending) keep(key, value, ttlOf(value))
      return value
    }, (err: unknown) => {
      if (loading.get(key)?.pending === pending) loading.delete(key)
      throw err
    })
    loading.set(key, { pending, waiters: shared.waiters })
    return pending
  }
  return { get: key => lasting.get(key) ?? passing.get(key), keep, load }
}

// Lookups one job may have waiting for a slot (createLookupSlots): a build asks a few names at a
// time (Maven's resolver five, npm fifteen), and a job naming a thousand made-up ones at once once
// held every place, so that other builds' lookups were refused.
const WAITING_PER_JOB = 128
// GitLab's tarball URL (GenerateMetadataService#tarball_url, under its external URL and any
// relative root): /api/v4/projects/<id>/packages/npm/<name>/-/<file>.
const TARBALL = /\/api\/v4\/projects\/([1-9]\d{0,15})\/packages\/npm\//

function tarballProject (url: string): number | null {
  let path: string
  try {
    path = new URL(url, 'http://gitlab').pathname
  } catch {
    return null
  }
  const id = TARBALL.exec(path)?.[1]
  return id === undefined ? null : Number(id)
}

// Packages::Package::INSTALLABLE_STATUSES, which npm's and Maven's finders install from
// (app/models/packages/package.rb): default, hidden and deprecated (which `npm deprecate` sets in
// recent GitLab). Never `error`, a package whose processing failed, which a job can make of any upload.
function installable (status: unknown): boolean {
  return status === undefined || status === 'default' || status === 'hidden' || status === 'deprecated'
}

function unverified (message?: string): GateError {
  return new GateError('PROJECT_LOOKUP_UNVERIFIED', message, { cause: new Error('GATE_SERVICE_TOKEN is neither an administrator nor an auditor') })
}

/** The public message is the table's; what went wrong, for logs, is the cause. */
export function lookupError (code: 'PROJECT_LOOKUP_FAILED' | 'PROJECT_LOOKUP_UNAVAILABLE', detail: string): GateError {
  return new GateError(code, undefined, { cause: new Error(detail) })
}

/** GitLab's answers that leave nothing to decide by (src/projects/facts.ts reads them the same way). */
export function unavailableOn (status: number, path: string): void {
  if (status === 429 || status >= 500) throw lookupError('PROJECT_LOOKUP_UNAVAILABLE', `GET ${path} answered ${status}`)
  // The service token itself refused: the gate's configuration is wrong; nothing can be decided.
  if (status === 401 || status === 403) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} answered ${status}: GATE_SERVICE_TOKEN cannot read it`)
}

/**
 * Where GitLab's redirect for a moved project's old path leads: `/api/v4/projects/<id>`
 * (lib/api/helpers.rb), the id only; anything else is an answer the gate cannot read.
 */
export function movedProjectPath (location: string | undefined, path: string): string {
  const id = movedProjectId(location)
  if (id === undefined) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${path} redirected elsewhere`)
  return `/api/v4/projects/${id}`
}

export function mapUnavailable (err: unknown, path: string): unknown {
  if (err instanceof GitlabUnavailable) return lookupError('PROJECT_LOOKUP_UNAVAILABLE', `GET ${path} failed: ${err.reason}`)
  return err
}

function okBody (answer: { status: number, body: Readonly<Record<string, unknown>> | undefined }, what: string): Readonly<Record<string, unknown>> {
  if (answer.status !== 200 || answer.body === undefined) throw lookupError('PROJECT_LOOKUP_FAILED', `GET ${what} answered ${answer.status}`)
  return answer.body
}

function toId (value: unknown): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : null
  if (typeof value === 'string' && /^[1-9]\d{0,15}$/.test(value)) return Number(value)
  return null
}
