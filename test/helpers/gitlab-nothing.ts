// A GitLab client, in process, to which nothing exists: every GET and list answers 404, and the
// GETs are counted. `answer` may answer some paths first (uncounted): a caller's own user, say.

import type { GitlabClient } from '../../src/gitlab/client.ts'

export function gitlabFindingNothing (answer?: (path: string) => { status: number, body: Readonly<Record<string, unknown>> } | undefined): { readonly gitlab: GitlabClient, readonly lookups: () => number } {
  let lookups = 0
  const gitlab: GitlabClient = {
    async get (path) {
      const answered = answer?.(path)
      if (answered !== undefined) return answered
      lookups++
      return { status: 404, body: undefined }
    },
    async getList () { return { status: 404, items: undefined, truncated: false } },
    hasServiceToken: true,
    stats: () => ({}),
    async close () {}
  }
  return { gitlab, lookups: () => lookups }
}
