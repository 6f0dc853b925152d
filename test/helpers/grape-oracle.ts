// The Grape oracle (grape-oracle.rb) as a child process: the parameters a JSON-default Grape API
// of GitLab's reads from a request body, with Grape, MultiJson and Oj as Debian ships them.

import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startLineOracle } from './line-oracle.ts'

const SCRIPT = fileURLToPath(new URL('./grape-oracle.rb', import.meta.url))

export interface GrapeAnswer {
  readonly status: number
  /** The credential parameters read (`job_token`, `token`, ...), each as its string leaves. */
  readonly params: Readonly<Record<string, readonly string[]>>
  readonly grape: string
}

/**
 * The API asked (grape-oracle.rb): one declaring `default_format :json` as GitLab's NuGet, PyPI,
 * Composer, Cargo and Terraform state APIs do; one declared as GitLab's API::API (`format :json`,
 * no default format); the same with the text and binary content types some APIs add.
 */
export type GrapeApi = 'json_default' | 'json' | 'json_txt'

export interface GrapeOracle {
  ask (method: string, contentType: string | null, body: Buffer, api?: GrapeApi): Promise<GrapeAnswer>
  close (): Promise<void>
}

/** Null when Ruby loads Grape, MultiJson and Oj, else what is missing. */
export function grapeUnavailable (): string | null {
  const probe = spawnSync('ruby', ['-e', 'require "grape"; require "multi_json"; require "oj"'], { encoding: 'utf8' })
  if (probe.error !== undefined) return `ruby is not installed (${probe.error.message}); install the Debian packages ruby, ruby-grape, ruby-multi-json and ruby-oj`
  if (probe.status !== 0) return `ruby cannot load Grape, MultiJson and Oj (${probe.stderr.trim().split('\n')[0] ?? ''}); install the Debian packages ruby-grape, ruby-multi-json and ruby-oj`
  return null
}

export function startGrapeOracle (): GrapeOracle {
  const oracle = startLineOracle<GrapeAnswer>('grape oracle', 'ruby', [SCRIPT])
  return {
    ask: async (method, contentType, body, api = 'json_default') => await oracle.ask({ m: method, t: contentType, b: body.toString('base64'), a: api }),
    close: async () => { await oracle.close() }
  }
}

const ROUTES_SCRIPT = fileURLToPath(new URL('./grape-routes.rb', import.meta.url))

export interface GrapeRoute {
  readonly id: string
  readonly pattern: string
  /** Parameters with a `[^/]+` requirement (they may hold '.'); the others take Grape's default. */
  readonly dots: readonly string[]
  /** False where GitLab declares the route `format: false` (no `.json` format is split off). */
  readonly format?: false
  /** GitLab's own requirements (Ruby regular expression sources) where they are not `[^/]+`. */
  readonly requirements?: Readonly<Record<string, string>>
}

export interface GrapeRoutesOracle {
  /** The routes that match `path` (an API path, after /api/v4), each with its decoded parameters. */
  matches (method: string, path: string, routes: readonly GrapeRoute[]): Promise<Readonly<Record<string, Readonly<Record<string, string>>>>>
  close (): Promise<void>
}

/** Grape's route matching (grape-routes.rb): which routes a path matches, each declared alone. */
export function startGrapeRoutesOracle (): GrapeRoutesOracle {
  const oracle = startLineOracle<{ matches: Record<string, Record<string, string>> }>('grape routes oracle', 'ruby', [ROUTES_SCRIPT])
  return {
    matches: async (method, path, routes) => (await oracle.ask({ m: method, p: path, routes })).matches,
    close: async () => { await oracle.close() }
  }
}
