// The Rack oracle (rack-oracle.rb) as a child process: one Ruby process answers every request,
// one JSON line each way. `rackAvailable()` says whether Ruby and Rack are installed; a test that
// needs them fails under CI=true and says loudly why it is skipped elsewhere.

import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startLineOracle } from './line-oracle.ts'

const SCRIPT = fileURLToPath(new URL('./rack-oracle.rb', import.meta.url))

export interface OracleRequest {
  readonly method: string
  /** Path and query, latin1 (one character per byte). */
  readonly target: string
  /** Header lines in order, as GitLab would receive them; values latin1. */
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: Buffer
  /** Also answer Rack::Request#GET and #POST as data (`get`, `post`). */
  readonly params?: boolean
}

/** One of Rack::Request#GET and #POST: the parameters (nil as null), or the error Rack raised. */
export type RackReading = { readonly params: Record<string, unknown> } | { readonly raised: string }

export interface OracleAnswer {
  /** The method Rails routes after Rack::MethodOverride. */
  readonly method: string
  /** [where, value]: `query:job_token`, `body:token`, `json:private_token`, `header:job-token`, `basic:<user>`, `basic-user`, `basic-any:<user>` (TokenLocator's reading under any scheme), `bearer`. */
  readonly creds: ReadonlyArray<readonly [string, string]>
  /** Parsers that raised (Rack::Request#GET, #POST, JSON), for the failure report. */
  readonly errors: readonly string[]
  /** With `params` asked: Rack::Request#GET and #POST. */
  readonly get?: RackReading
  readonly post?: RackReading
}

/** Null when `ruby -e 'require "rack"'` works, else what is missing. */
export function rackUnavailable (): string | null {
  const probe = spawnSync('ruby', ['-e', 'require "rack"; print Rack.release'], { encoding: 'utf8' })
  if (probe.error !== undefined) return `ruby is not installed (${probe.error.message}); install the Debian packages ruby and ruby-rack`
  if (probe.status !== 0) return `ruby cannot load rack (${probe.stderr.trim().split('\n')[0] ?? ''}); install the Debian package ruby-rack`
  return null
}

export interface RackOracle {
  ask (request: OracleRequest): Promise<OracleAnswer>
  /** The Rack version answering. */
  readonly release: string
  close (): Promise<void>
}

export function startRackOracle (): RackOracle {
  const release = spawnSync('ruby', ['-e', 'require "rack"; print Rack.release'], { encoding: 'utf8' }).stdout
  const oracle = startLineOracle<OracleAnswer>('rack oracle', 'ruby', [SCRIPT])
  return {
    release,
    ask: async (request) => await oracle.ask({ m: request.method, t: request.target, h: request.headers, b: request.body.toString('base64'), ...(request.params === true ? { p: true } : {}) }),
    close: async () => { await oracle.close() }
  }
}
