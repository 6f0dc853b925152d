// Go's mime/multipart as Workhorse reads a body (test/helpers/go_multipart.go). Without Go
// (Debian's golang-go) the tests that ask it fail under CI=true and are skipped elsewhere
// (require-tool.ts).

import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface GoPart {
  readonly name: string
  readonly file: string
  readonly value: Buffer
}

export interface GoReading {
  readonly parts: readonly GoPart[]
  /** The body Workhorse hands Rails: the field parts it keeps, Content-Disposition as Go writes it, and the fields it writes for each file part. */
  readonly rewritten: Buffer
  /** With a Content-Type: the boundary Go read from it, where net/http's MultipartReader() took it. */
  readonly boundary?: string
  readonly error?: string
}

const SOURCE = fileURLToPath(new URL('./go_multipart.go', import.meta.url))
let built: { readonly binary: string } | { readonly missing: string } | undefined

/**
 * The oracle's binary, built once for this source and this Go and kept in the temp directory for
 * the next process: a build costs seconds of CPU, and a run of the suite starts several processes
 * that ask Go. Processes building at once each write a binary of their own and move it into place,
 * the same program either way.
 */
function build (): { readonly binary: string } | { readonly missing: string } {
  if (built !== undefined) return built
  const version = spawnSync('go', ['version'], { encoding: 'utf8' })
  if (version.error !== undefined || version.status !== 0) {
    built = { missing: `go is not installed (Debian: golang-go): ${version.error?.message ?? version.stderr}` }
    return built
  }
  const dir = join(tmpdir(), 'job-token-gate-go-oracle')
  const key = createHash('sha256').update(version.stdout).update(readFileSync(SOURCE)).digest('hex').slice(0, 16)
  const binary = join(dir, `go-multipart-${key}`)
  if (existsSync(binary)) {
    built = { binary }
    return built
  }
  mkdirSync(dir, { recursive: true })
  const building = `${binary}.${process.pid}`
  // A cache and GOPATH of their own (CI may run without a HOME for Go's defaults), and no cgo: no C
  // compiler needed.
  const env = { ...process.env, GOCACHE: join(dir, 'cache'), GOPATH: join(dir, 'gopath'), CGO_ENABLED: '0' }
  const result = spawnSync('go', ['build', '-o', building, SOURCE], { env, encoding: 'utf8' })
  if (result.error !== undefined) built = { missing: `go is not installed (Debian: golang-go): ${result.error.message}` }
  else if (result.status !== 0) built = { missing: `go build failed: ${result.stderr}` }
  else {
    renameSync(building, binary)
    built = { binary }
  }
  return built
}

/** Null when Go can answer, else why not. */
export function goUnavailable (): string | null {
  const b = build()
  return 'missing' in b ? b.missing : null
}

/**
 * Each body as Go's NextPart() reads it, under `boundary`, or as net/http's MultipartReader() takes
 * it with `contentType` (an error where Go reads no multipart/form-data or multipart/mixed there).
 */
export function goMultipart (bodies: ReadonlyArray<{ readonly boundary: string, readonly body: Buffer, readonly contentType?: string }>): GoReading[] {
  const b = build()
  if ('missing' in b) throw new Error(b.missing)
  const input = JSON.stringify(bodies.map(x => ({ boundary: x.boundary, body: x.body.toString('base64'), ...(x.contentType === undefined ? {} : { contentType: x.contentType }) })))
  const result = spawnSync(b.binary, [], { input, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
  if (result.status !== 0) throw new Error(`go-multipart failed: ${result.stderr}`)
  const answers = JSON.parse(result.stdout) as Array<{ parts: null | Array<{ name: string, file: string, value: string }>, rewritten: string, boundary?: string, error?: string }>
  return answers.map(a => ({ parts: (a.parts ?? []).map(p => ({ name: p.name, file: p.file, value: Buffer.from(p.value, 'base64') })), rewritten: Buffer.from(a.rewritten, 'base64'), ...(a.boundary === undefined ? {} : { boundary: a.boundary }), ...(a.error === undefined ? {} : { error: a.error }) }))
}
