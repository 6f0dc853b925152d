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

export interface GrapeOracle {
  ask (method: string, contentType: string | null, body: Buffer): Promise<GrapeAnswer>
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
    ask: async (method, contentType, body) => await oracle.ask({ m: method, t: contentType, b: body.toString('base64') }),
    close: async () => { await oracle.close() }
  }
}
