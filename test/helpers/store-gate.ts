// A gate over a grants store a test holds, without the service token: GitLab shows it public
// projects only, so a project GitLab does not show by path is named by the store's path index
// alone. Its one job runs in project 100 (acme/platform/app); `seen` lists what reached GitLab's
// other routes.

import type { TestContext } from 'node:test'
import { pino, type Logger } from 'pino'
import { loadConfig } from '../../src/config.ts'
import { createGate } from '../../src/gate/server.ts'
import type { GrantStore } from '../../src/grants/store.ts'
import type { JobIdentity } from '../../src/identity/types.ts'
import { startFakeGitlab, type FakeGitlabOptions, type FakeProject } from './fake-gitlab.ts'

export const STORE_GATE_JOB_PROJECT: FakeProject = { id: 100, pathWithNamespace: 'acme/platform/app', namespace: { id: 11, kind: 'group', fullPath: 'acme/platform', parentId: 10 } }

export async function startStoreGate (t: TestContext, store: GrantStore, options: { readonly projects?: readonly FakeProject[], readonly users?: FakeGitlabOptions['users'], readonly deployTokens?: readonly string[], readonly env?: Readonly<Record<string, string>>, readonly logger?: Logger } = {}): Promise<{ url: string, seen: string[] }> {
  const seen: string[] = []
  const gitlab = await startFakeGitlab({
    anonymousPathLookups: true,
    projects: [STORE_GATE_JOB_PROJECT, ...options.projects ?? []],
    ...(options.users === undefined ? {} : { users: options.users }),
    ...(options.deployTokens === undefined ? {} : { deployTokens: options.deployTokens }),
    fallback: (req, res) => { seen.push(req.url ?? ''); res.end('{}') }
  })
  t.after(() => gitlab.close())
  const identity: JobIdentity = { jobId: 1, jobProjectId: 100, jobProjectPath: 'acme/platform/app', ancestorGroupIds: [11, 10], userId: 7 }
  const resolver = { resolve: async () => identity, close: async () => {} }
  const config = loadConfig({
    GATE_UPSTREAM_URL: gitlab.url, GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0',
    GATE_UNRESOLVED_PROJECT: 'defer', GATE_INSTANCE_TOKEN_PREFIX: '', ...options.env
  })
  const g = createGate(config, { store, resolver, logger: options.logger ?? pino({ level: 'silent' }) })
  await g.listen()
  t.after(() => g.close(0))
  return { url: `http://127.0.0.1:${g.address().port}`, seen }
}
