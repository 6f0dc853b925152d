// GitLab's job artifact routes by ref declare `requirements: { ref_name: /.+/ }`
// (lib/api/ci/job_artifacts.rb): the ref may hold a raw '/', as a branch name does where a job
// writes `jobs/artifacts/$CI_COMMIT_REF_NAME/download?job=build`. The catalog's `:ref_name` is one
// segment, so such a path matched no route, and its job token was stripped: the job could not
// download its own project's artifacts. Grape tries the two routes in the order GitLab declares
// them, the archive first: a path ending in `/download`, or `/download` with any format
// (`.json`, `.xml`, `.%2E`: GitLab's API declares two content types, so Grape takes any extension
// as the format), is the archive, whatever comes before it (`a/raw/b/download.xml` too), and only
// then `<ref>/raw/<file>`, the ref as long as it can be (`.+` is greedy).

import type { CatalogRoute } from '../catalog/types.ts'
import { decodeParam } from './canonical.ts'
import type { RouteMatch } from './router.ts'

const DOWNLOAD_ID = 'get_projects_id_jobs_artifacts_ref_name_download'
const RAW_ID = 'get_projects_id_jobs_artifacts_ref_name_raw_artifact_path'
const PREFIX = '/projects/'
const MARK = '/jobs/artifacts/'
const RAW = '/raw/'
const DOWNLOAD = 'download'

export interface RefRoutes {
  readonly download: CatalogRoute
  readonly raw: CatalogRoute
}

/** The two routes in a catalog, or null where it lacks either (the rule is then off). */
export function refRoutesOf (routes: readonly CatalogRoute[]): RefRoutes | null {
  const download = routes.find(r => r.id === DOWNLOAD_ID)
  const raw = routes.find(r => r.id === RAW_ID)
  return download === undefined || raw === undefined ? null : { download, raw }
}

/**
 * The match Grape makes of an API path the catalog's one-segment `:ref_name` missed, or read as
 * the raw file route where GitLab serves the archive; null for any other path. Parameters are
 * decoded once, as the router's are; an escape that does not decode is no match.
 */
export function matchRefRoute (routes: RefRoutes, apiPath: string): RouteMatch | null {
  // `/projects/<id>/jobs/artifacts/<rest>`, by index rather than by a pattern with two `.+`.
  if (!apiPath.startsWith(PREFIX)) return null
  const idEnd = apiPath.indexOf('/', PREFIX.length)
  if (idEnd <= PREFIX.length || !apiPath.startsWith(MARK, idEnd)) return null
  const rest = apiPath.slice(idEnd + MARK.length)
  try {
    const id = decodeParam(apiPath.slice(PREFIX.length, idEnd))
    // The archive's route comes first, with any format: its format holds no '.' as sent, but the
    // canonical path has an escaped one decoded (`download.a%2Eb` is the archive to Grape, read
    // `download.a.b` here), so anything after `download.` is taken as the format. The archive has
    // no public project features, the raw file route has: more requests decided as the archive,
    // never the archive decided as a file.
    const last = rest.lastIndexOf('/')
    if (last > 0 && rest.startsWith(DOWNLOAD, last + 1) && (rest.length === last + 1 + DOWNLOAD.length || (rest.charCodeAt(last + 1 + DOWNLOAD.length) === 0x2e && rest.length > last + 2 + DOWNLOAD.length))) {
      return frozen(routes.download, { id, ref_name: decodeParam(rest.slice(0, last)) }, rest.length > last + 1 + DOWNLOAD.length)
    }
    const raw = rest.lastIndexOf(RAW)
    if (raw > 0 && raw + RAW.length < rest.length) {
      return frozen(routes.raw, { id, ref_name: decodeParam(rest.slice(0, raw)), artifact_path: decodeParam(rest.slice(raw + RAW.length)) }, false)
    }
  } catch {
    return null
  }
  return null
}

function frozen (route: CatalogRoute, params: Record<string, string>, format: boolean): RouteMatch {
  return Object.freeze({ route, params: Object.freeze(Object.assign(Object.create(null) as Record<string, string>, params)), format })
}
