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

/**
 * Rack's multipart boundary of each Content-Type (Rack::Multipart::Parser.parse_boundary), null
 * where it finds none or raises; latin1 in and out, each character one byte as Node and Puma read
 * a header. One Ruby process for the list.
 */
export function rackBoundaries (types: readonly string[]): Array<string | null> {
  const ruby = spawnSync('ruby', ['-rjson', '-rrack', '-e', `
    STDIN.read.split("\\n").each do |line|
      type = JSON.parse(line).encode('ISO-8859-1').b
      boundary = begin; Rack::Multipart::Parser.parse_boundary(type); rescue StandardError; nil; end
      puts JSON.generate(boundary.nil? ? nil : boundary.force_encoding('ISO-8859-1').encode('UTF-8'))
    end`], { input: types.map(c => JSON.stringify(c)).join('\n'), encoding: 'utf8', maxBuffer: 1 << 26 })
  if (ruby.status !== 0) throw new Error(`Rack's parse_boundary failed: ${ruby.error?.message ?? ruby.stderr}`)
  const boundaries = ruby.stdout.trim().split('\n').map(l => JSON.parse(l) as string | null)
  if (boundaries.length !== types.length) throw new Error(`Rack answered ${boundaries.length} boundaries for ${types.length} types`)
  return boundaries
}

/**
 * The names Rack's multipart parser gives the parts of each body, in order (the names
 * Rack::Multipart::Parser hands its collector, before nesting them, which may then raise: an
 * invalid UTF-8 name); latin1. One Ruby process for the list.
 */
export function rackPartNames (bodies: ReadonlyArray<{ readonly boundary: string, readonly body: Buffer }>): string[][] {
  const ruby = spawnSync('ruby', ['-rjson', '-rrack', '-rstringio', '-rbase64', '-e', `
    module Names
      def on_mime_head(index, head, filename, content_type, name)
        $names << name.b.force_encoding('ISO-8859-1').encode('UTF-8')
        super
      end
    end
    Rack::Multipart::Parser::Collector.prepend(Names)
    STDIN.read.split("\\n").each do |line|
      request = JSON.parse(line)
      body = Base64.strict_decode64(request['d'])
      $names = []
      begin
        Rack::Multipart::Parser.parse(StringIO.new(body), body.bytesize, "multipart/form-data; boundary=#{request['b']}",
          ->(_f, _c) { StringIO.new(+'') }, Rack::Multipart::Parser::BUFSIZE, Rack::Utils.default_query_parser)
      rescue StandardError
        # The names were given all the same.
      end
      puts JSON.generate($names)
    end`], { input: bodies.map(b => JSON.stringify({ b: b.boundary, d: b.body.toString('base64') })).join('\n'), encoding: 'utf8', maxBuffer: 1 << 26 })
  if (ruby.status !== 0) throw new Error(`Rack's multipart parser failed: ${ruby.error?.message ?? ruby.stderr}`)
  const names = ruby.stdout.trim().split('\n').map(l => JSON.parse(l) as string[])
  if (names.length !== bodies.length) throw new Error(`Rack answered for ${names.length} bodies of ${bodies.length}`)
  return names
}
