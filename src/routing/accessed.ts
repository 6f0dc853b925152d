// Which project a matched request touches, as far as the URL tells (docs/gitlab-rules.md,
// "Which project a request accesses").

import { rubyInteger } from '../text.ts'
import type { RouteMatch } from './router.ts'

export type AccessedProject =
  /** `/projects/:id/...` with a numeric id (`0042` is 42; `+42`, `4_2`, ` 42` too: rubyInteger). */
  | { readonly kind: 'project_id', readonly id: number }
  /** `/projects/:id/...` with a URL-encoded full path, matched case-insensitively by GitLab. */
  | { readonly kind: 'project_path', readonly path: string }
  /** `/jobs/:id/...`: the project that owns the job. */
  | { readonly kind: 'job', readonly jobId: number }
  /** The token's own job (`/job`): always self access. */
  | { readonly kind: 'token_job' }
  /** Group and instance routes: the project is only known from the resource, after routing. */
  | { readonly kind: 'unknown', readonly scope: 'group' | 'instance', readonly group?: string }

export function accessedProject (match: RouteMatch): AccessedProject {
  const id = match.params.id ?? ''
  switch (match.route.accessedProject) {
    case 'project': {
      const n = rubyInteger(id)
      return n !== null ? { kind: 'project_id', id: n } : { kind: 'project_path', path: id }
    }
    case 'job': {
      // A non-number is never a job.
      const n = rubyInteger(id)
      return n !== null ? { kind: 'job', jobId: n } : { kind: 'unknown', scope: 'instance' }
    }
    case 'token_job':
      return { kind: 'token_job' }
    case 'group': {
      // A group route whose URL names its project (Debian's pool download, `:project_id`): that
      // project, decided as `/projects/:id` is, whatever GATE_UNRESOLVED_PROJECT says of routes
      // whose project the URL does not tell.
      if (match.route.projectFrom === 'project_id_param') {
        const n = rubyInteger(match.params.project_id ?? '')
        if (n !== null && n > 0) return { kind: 'project_id', id: n }
      }
      return { kind: 'unknown', scope: 'group', group: id }
    }
    case 'instance':
      return { kind: 'unknown', scope: 'instance' }
  }
}

export function describeAccessedProject (accessed: AccessedProject): string {
  switch (accessed.kind) {
    case 'project_id': return `project #${accessed.id}, named by its id in the URL (:id; a group route's :project_id)`
    case 'project_path': return `project "${accessed.path}", from the :id path parameter (a full path, resolved to an id)`
    case 'job': return `the project of job #${accessed.jobId}, from the :id path parameter (see project lookup)`
    case 'token_job': return "the token's own job (self access)"
    case 'unknown': return accessed.scope === 'group'
      ? `not in the URL: found from the resource of group "${accessed.group ?? ''}" (see project lookup)`
      : 'not in the URL: found from the resource of an instance-level route (see project lookup)'
  }
}
