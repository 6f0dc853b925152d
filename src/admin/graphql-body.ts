// Reading a `POST /api/graphql` body just far enough to tell whose request it is, so that only
// bodies that can be the gate's own are held in memory and everything else streams to GitLab.
//
// The rule (docs/admin.md, "Bodies over 1 MiB"):
// - a body that ends within the limit is read whole and decided by graphql.ts, every reading of
//   it, exactly as before: nothing changes for the gate's own requests, which are small;
// - a body over the limit can only be the gate's if its text names one of the fields the
//   classifier looks for (RELEVANT_TEXT: a document that names none of them is GitLab's, whatever
//   else the request holds). So the bytes read so far (the limit, plus the chunk that crossed
//   it) and the URL's query string are searched for those names as GitLab could read them: raw,
//   with JSON `\uXXXX` escapes decoded, and, for form bodies and the query string, percent-
//   decoded too (then JSON-unescaped). A name found: in doubt, refused — 413
//   GRAPHQL_BODY_TOO_LARGE, or 400 GRAPHQL_MIXED_OPERATION when it is in the first part of a
//   multipart body (the GraphQL multipart request spec's `operations`: an upload mixed with the
//   gate's fields, which take no uploads). None found: the request is GitLab's; the bytes read
//   are forwarded first, then the rest of the body as it arrives, through a Transform that keeps
//   searching (across chunk boundaries) and errors at a name, before the body's last byte is
//   released. GitLab (Puma) runs nothing before it has the whole body, so a name past the limit
//   reaches nothing: the upstream request is aborted and the client refused.
// - in a multipart body, a GraphQL parameter in a part complete within the bytes read that
//   parsers could read differently (doubtfulPartNames) refuses the body, whoever sends it, as in
//   a whole body: Workhorse decodes a quoted-printable `operations`, whose names the search
//   cannot see.
//
// Why not read only the multipart `operations` part, as a GraphQL multipart request puts it
// first: Rack reads every part, the last `operations` (or a `query` part, when `operations` has
// none) wins, and framing differs between parsers, so deciding from the first part would need a
// second multipart reader kept in step with Rack's. Searching the bytes for the names holds
// whatever the framing, costs one regular expression per chunk, and the first MiB buffered is
// what the gate held for every GraphQL request before. A file whose bytes happen to spell one of
// the names is refused (fail closed); for image uploads that does not happen in practice.
//
// Fine-grained personal access tokens (src/graphql/enforce.ts) are decided before anything is
// forwarded, so a large body is read for them too (docs/graphql.md, "Bodies over 1 MiB"):
// - multipart (the GraphQL multipart request spec: `operations`, `map`, then the files) is the
//   legitimate large body: the parts complete within the bytes read (completeMultipartParts)
//   are read as GitLab reads them and the request decided from them; from the first part not
//   complete on, LatePartGuard cuts the stream at any part GitLab would read as a GraphQL
//   parameter (`query`, `variables`, `operationName`, `operations`, `map`, `_json`, `extensions`),
//   a credential (`private_token`, `access_token`, `bearer_token`, `job_token`), whatever the token,
//   or, for a fine-grained token, a part the decided `map` names that is no file;
// - any other body over the limit cannot be decided for such a token (413), and an access
//   token parameter in one, which the gate could not check, is refused the same way (the names
//   are searched as the gate fields are, raw and escaped).
//
// Credentials: the body handed on goes through the identity stage like any other (a streamed
// multipart body through the multipart guard, which refuses a job token in any field before the
// closing delimiter; JSON and form bodies are read whole, up to GATE_MAX_INSPECTED_BODY_BYTES).

import type { IncomingMessage } from 'node:http'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { errors, GateError } from '../errors.ts'
import { goReadsMultipart, parseMultipartBoundary, rackMediaType } from '../identity/body-scan.ts'
import { BodyBudgetExhausted, readUpTo, type BodyBudget } from '../read-body.ts'
import { trimEnds } from '../text.ts'
import { createMultipartCounter, isFilePart, multipartHeaderNames } from '../identity/multipart.ts'
import { IdentityError } from '../identity/types.ts'
import { doubtfulMessage, isGraphqlPartName, mapKeyMatcher, RACK_MULTIPART_TYPE, RELEVANT_TEXT, UNREADABLE_BOUNDARY } from './graphql.ts'
import { doubtfulPartNames } from '../identity/rack-multipart.ts'
import { MODEL_REGISTRY_TEXT } from './model-registry.ts'
import { PACKAGE_DELETE_TEXT } from './package-deletes.ts'
import { AdminError } from './service.ts'

export type GraphqlBody =
  /** The body ended within the limit. */
  | { readonly kind: 'whole', readonly bytes: Buffer }
  /** More than the limit was read (`prefix`); the rest is unread and the request paused. */
  | { readonly kind: 'over', readonly prefix: Buffer }

/** A read past the gate's body budget as the configuration API's refusal (503). */
export function budgetRefusal (err: unknown): never {
  throw err instanceof BodyBudgetExhausted ? new AdminError('BODY_BUDGET_EXHAUSTED') : err
}

/**
 * Reads `req` until it ends or more than `limit` bytes were read. Rejects when the request
 * fails or the client goes away before either, with a 503 AdminError past the budget, and with a
 * 400 AdminError at the chunk where a multipart body passes the bounds the identity stage's
 * multipart guard sets on every body (its parts, their header bytes together): every part is
 * read here, then again by the guard, so a body the guard refuses is refused before either.
 */
export async function readGraphqlBody (req: IncomingMessage, limit: number, budget?: BodyBudget): Promise<GraphqlBody> {
  const contentType = String(req.headers['content-type'] ?? '')
  const boundary = rackMediaType(contentType)?.startsWith('multipart/') === true ? parseMultipartBoundary(contentType) : null
  const counter = boundary === null ? null : createMultipartCounter(boundary)
  const read = await readUpTo(req, limit, budget, counter === null ? undefined : chunk => { counter.write(chunk) }, counter === null ? undefined : () => { counter.end() }).catch(bodyRefusal)
  const bytes = Buffer.concat(read.chunks, read.size)
  return read.complete ? { kind: 'whole', bytes } : { kind: 'over', prefix: bytes }
}

/** budgetRefusal, and a multipart body past the guard's bounds as the configuration API's refusal (400). */
function bodyRefusal (err: unknown): never {
  if (err instanceof IdentityError) throw new AdminError(err.code)
  return budgetRefusal(err)
}

const PERCENT_ESCAPE = /%([0-9a-fA-F]{2})/g
const HEX4 = /^[0-9a-fA-F]{4}$/

/**
 * `text` with every `\\uXXXX` escape decoded, after any number of backslashes: an escape inside a
 * JSON string inside JSON still counts (more readings than GitLab makes can only refuse more).
 * What `/\\+u([0-9a-fA-F]{4})/g` replaces, run by run: the expression backtracks over every run of
 * backslashes not before a `u`, quadratic (a 64 KiB chunk of them: 1.3 s; 1 MiB: minutes).
 */
export function jsonUnescaped (text: string): string {
  let out = ''
  let kept = 0
  for (let i = text.indexOf('\\'); i !== -1;) {
    let j = i
    while (text.charCodeAt(j) === 0x5c) j++
    const hex = text.slice(j + 1, j + 5)
    if (text[j] === 'u' && HEX4.test(hex)) {
      out += text.slice(kept, i) + String.fromCharCode(Number.parseInt(hex, 16))
      kept = j + 5
      i = text.indexOf('\\', kept)
    } else {
      i = text.indexOf('\\', j)
    }
  }
  return kept === 0 ? text : out + text.slice(kept)
}

function percentDecoded (text: string): string {
  return text.replace(PERCENT_ESCAPE, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
}

/**
 * Whether `text` (bytes as latin1) matches `pattern` raw or JSON-escaped, and with `percent` also
 * percent-encoded (form bodies, query strings).
 */
function readsAs (pattern: RegExp, text: string, percent: boolean): boolean {
  if (pattern.test(text)) return true
  if (text.includes('\\') && pattern.test(jsonUnescaped(text))) return true
  if (percent && text.includes('%')) {
    const decoded = percentDecoded(text)
    if (pattern.test(decoded)) return true
    if (decoded.includes('\\') && pattern.test(jsonUnescaped(decoded))) return true
  }
  return false
}

/** Whether `text` names one of the fields that make a GraphQL request the gate's, in any reading (readsAs). */
export function namesGateFields (text: string, percent: boolean): boolean {
  return readsAs(RELEVANT_TEXT, text, percent)
}

// Two needles cover RELEVANT_TEXT's names (`obToken`: ciJobTokenScope, jobTokenPermissions).
const RAW_NAMES = ['obToken', 'SettingsUpdate'].map(name => Buffer.from(name, 'latin1'))
const BACKSLASH_U = Buffer.from('\\u', 'latin1')
const PERCENT = 0x25

function isHexDigit (c: number | undefined): boolean {
  return c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66))
}

/** Whether `bytes` holds `\u` and four hex digits: a JSON escape. */
function hasJsonEscape (bytes: Buffer): boolean {
  for (let i = bytes.indexOf(BACKSLASH_U); i !== -1; i = bytes.indexOf(BACKSLASH_U, i + 2)) {
    if (isHexDigit(bytes[i + 2]) && isHexDigit(bytes[i + 3]) && isHexDigit(bytes[i + 4]) && isHexDigit(bytes[i + 5])) return true
  }
  return false
}

/** Whether `bytes` holds `%` and two hex digits: a percent escape. */
function hasPercentEscape (bytes: Buffer): boolean {
  for (let i = bytes.indexOf(PERCENT); i !== -1; i = bytes.indexOf(PERCENT, i + 1)) {
    if (isHexDigit(bytes[i + 1]) && isHexDigit(bytes[i + 2])) return true
  }
  return false
}

/**
 * readsAs over bytes, `needles` being raw substrings that every raw match holds. Hot path: without
 * a needle and without an escape no reading can differ from the bytes, so most chunks of an
 * upload cost a Buffer search per needle and a scan for escapes, and never become a string.
 */
function bytesReadAs (needles: readonly Buffer[], pattern: RegExp, bytes: Buffer, percent: boolean): boolean {
  if (needles.some(needle => bytes.includes(needle)) || hasJsonEscape(bytes) || (percent && hasPercentEscape(bytes))) {
    return readsAs(pattern, bytes.toString('latin1'), percent)
  }
  return false
}

/** namesGateFields over bytes. */
export function bytesNameGateFields (bytes: Buffer, percent: boolean): boolean {
  return bytesReadAs(RAW_NAMES, RELEVANT_TEXT, bytes, percent)
}

// The mutations a project's package rules bind for users: the model registry's
// (model-registry.ts) and the package deletes (package-deletes.ts). The gate reads them only in
// bodies it reads whole, as it reads the gate's fields. One needle each for the names raw.
const PACKAGE_MUTATION_TEXT = new RegExp(`${MODEL_REGISTRY_TEXT.source}|${PACKAGE_DELETE_TEXT.source}`)
const PACKAGE_MUTATION_NEEDLES = ['mlModel', 'destroyPackage'].map(name => Buffer.from(name, 'latin1'))

/** Whether `text` names a mutation the package rules bind, in any reading (readsAs). */
export function namesPackageMutation (text: string, percent: boolean): boolean {
  return readsAs(PACKAGE_MUTATION_TEXT, text, percent)
}

/** namesPackageMutation over bytes. */
export function bytesNamePackageMutation (bytes: Buffer, percent: boolean): boolean {
  return bytesReadAs(PACKAGE_MUTATION_NEEDLES, PACKAGE_MUTATION_TEXT, bytes, percent)
}

const PACKAGE_MUTATION_TOO_LARGE = (limit: number, where: string): string =>
  `413 Request Entity Too Large - this GraphQL request is over ${limit} bytes and names a model registry mutation (mlModel*) or a package delete (destroyPackage*) ${where}; the gate checks a project's package rules on those only in requests of at most ${limit} bytes (they take no uploads)`

/**
 * How much of the previous chunk the stream search keeps: the longest name (19 characters) with
 * every character in the longest escape counted, `%5C%75%30%30%36%33` (18 bytes), and to spare.
 */
const TAIL_BYTES = 1024

// As graphql.ts compares them: Ruby's white space, not JavaScript's.
const FORM_TYPE = /^[ \t]*application\/x-www-form-urlencoded[ \t]*(?:[;,]|$)/i
const MULTIPART_TYPE = /^[ \t]*multipart\//i

/** The parts of the request that decide how its body is read. */
export interface GraphqlBodyRequest {
  readonly method: string
  /** The raw URL query string (without '?'). */
  readonly query: string
  readonly contentType: string
}

export type OverLimit =
  /** GitLab's: forward `body` (the bytes read, then the rest of the request, searched as it streams). */
  | { readonly kind: 'stream', readonly body: Readable }
  | { readonly kind: 'refused', readonly error: GateError }

/**
 * Decides a body over `limit` from its first bytes (see the header); `req` is the paused request.
 * `mapKeys`: the parameters the decided `map` names (graphql.ts mapKeys), which a later part may
 * carry only as a file.
 */
export function decideOverLimit (prefix: Buffer, req: IncomingMessage | Readable, request: GraphqlBodyRequest, limit: number, mapKeys: readonly string[] = []): OverLimit {
  // Rack reads a POST without a type as a form, as graphql.ts does.
  const form = FORM_TYPE.test(request.contentType) || (trimEnds(request.contentType, ' \t') === '' && request.method === 'POST')
  const multipart = MULTIPART_TYPE.test(request.contentType)
  const boundary = multipart ? parseMultipartBoundary(request.contentType) : null
  if (boundary === null && (RACK_MULTIPART_TYPE.test(request.contentType) || goReadsMultipart(request.contentType))) return { kind: 'refused', error: new AdminError('GRAPHQL_AMBIGUOUS_REQUEST', `400 Bad request - ${UNREADABLE_BOUNDARY}`) }
  if (boundary !== null) {
    // The parts complete in the bytes read, as a whole body's are read (graphql.ts): a GraphQL
    // parameter in a part parsers could read differently is refused, whoever sends it. The names
    // searched below are searched in the bytes as sent, and Workhorse hands Rails a part's value
    // decoded (quoted-printable), under the name Go reads.
    const known = Buffer.concat([completeMultipartParts(prefix, boundary), Buffer.from(`--${boundary}--`, 'latin1')])
    const doubtful = [...new Set(doubtfulPartNames(known, boundary).filter(isGraphqlPartName))]
    if (doubtful.length > 0) return { kind: 'refused', error: new AdminError('GRAPHQL_AMBIGUOUS_REQUEST', `400 Bad request - ${doubtfulMessage(doubtful)}`) }
  }
  if (!multipart && (bytesNameTokenParams(prefix, form) || namesTokenParams(request.query, true))) {
    return { kind: 'refused', error: new GateError('GRAPHQL_FINE_GRAINED_BODY_TOO_LARGE', TOKEN_IN_LARGE_BODY) }
  }
  if (namesPackageMutation(request.query, true) || bytesNamePackageMutation(prefix, form)) {
    return { kind: 'refused', error: new GateError('GRAPHQL_BODY_TOO_LARGE', PACKAGE_MUTATION_TOO_LARGE(limit, 'within its first bytes or its URL')) }
  }
  if (namesGateFields(request.query, true) || bytesNameGateFields(prefix, form)) {
    if (MULTIPART_TYPE.test(request.contentType) && firstPartNamesGateFields(prefix.toString('latin1'), request.contentType)) {
      return {
        kind: 'refused',
        error: new AdminError('GRAPHQL_MIXED_OPERATION', `400 Bad request - this GraphQL multipart request (over ${limit} bytes: an upload) names job token allowlist fields in its operations; the gate's fields and GitLab's allowlist mutations take no uploads: send them in a JSON request of their own`)
      }
    }
    return { kind: 'refused', error: new AdminError('GRAPHQL_BODY_TOO_LARGE', tooLarge(limit, 'within its first bytes or its URL')) }
  }
  const guard = new GateFieldsGuard(prefix, form, limit, !multipart)
  // The request is not destroyed with the guard: a refusal is still answered on its connection.
  // A client gone before the end fails the guard, so whoever reads it stops waiting.
  req.on('error', err => guard.destroy(err))
  req.on('close', () => {
    const received = 'complete' in req ? req.complete : req.readableEnded
    if (!received) guard.destroy(new Error('the client closed the request before the end of its body'))
  })
  req.pipe(guard)
  if (boundary === null) return { kind: 'stream', body: guard }
  // The parts from the first incomplete one on: none may be a GraphQL parameter or a credential.
  const late = new LatePartGuard(boundary, completeMultipartParts(prefix, boundary).length, mapKeys)
  guard.on('error', err => late.destroy(err))
  guard.pipe(late)
  return { kind: 'stream', body: late }
}

const TOKEN_IN_LARGE_BODY = '413 Request Entity Too Large - this GraphQL request is over 1 MiB and names an access token parameter (private_token, access_token, bearer_token) in its body or URL, which the gate cannot check before forwarding; send the token in a header (PRIVATE-TOKEN or Authorization)'

// The parameters GitLab reads an access token from (src/graphql/enforce.ts), searched in large
// bodies that are not multipart; one needle covers them all before the escapes are decoded.
const TOKEN_PARAMS_TEXT = /private_token|access_token|bearer_token/
const TOKEN_NEEDLES = [Buffer.from('_token', 'latin1')]

export function namesTokenParams (text: string, percent: boolean): boolean {
  return readsAs(TOKEN_PARAMS_TEXT, text, percent)
}

export function bytesNameTokenParams (bytes: Buffer, percent: boolean): boolean {
  return bytesReadAs(TOKEN_NEEDLES, TOKEN_PARAMS_TEXT, bytes, percent)
}

/**
 * The bytes of a multipart body's parts that are complete in `prefix`: everything before the
 * last delimiter read (the part after it may go on past the bytes read).
 */
export function completeMultipartParts (prefix: Buffer, boundary: string): Buffer {
  const at = prefix.lastIndexOf(Buffer.from('--' + boundary, 'latin1'))
  return at === -1 ? prefix.subarray(0, 0) : prefix.subarray(0, at)
}

/** Longest part header read: the identity stage's multipart guard refuses longer ones too. */
const MAX_PART_HEADER = 16 * 1024

/**
 * Hot path for GraphQL uploads of fine-grained tokens and every other large multipart body:
 * passes the stream through unchanged and reads each part header as it goes by; a part named
 * as a GraphQL parameter or a credential errors the stream before its bytes are released, so
 * GitLab (which reads the whole body before running anything) never acts on it. A chunk costs
 * one search for the delimiter.
 */
class LatePartGuard extends Transform {
  private readonly delimiter: Buffer
  /** Bytes not yet searched whole: the end of the last chunk, or a part header being read. */
  private carry: Buffer = Buffer.alloc(0)

  /** Whether a part of this name is a parameter the decided `map` names (graphql.ts, mapKeyMatcher). */
  private readonly namesMapKey: (name: string) => boolean
  private readonly anyMapKey: boolean

  /**
   * `skip`: the bytes of the parts the request was decided from, passed on unread. `mapKeys`:
   * names a part may have only as a file: GitLab's upload middleware writes the parameter of such
   * a name into the operation's variables, and text there was not checked.
   */
  constructor (boundary: string, private skip: number, mapKeys: readonly string[] = []) {
    super()
    this.delimiter = Buffer.from('--' + boundary, 'latin1')
    this.namesMapKey = mapKeyMatcher(mapKeys)
    this.anyMapKey = mapKeys.length > 0
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let searched = chunk
    if (this.skip > 0) {
      const skipped = Math.min(this.skip, chunk.length)
      this.skip -= skipped
      if (skipped === chunk.length) { callback(null, chunk); return }
      searched = chunk.subarray(skipped)
    }
    const data = this.carry.length === 0 ? searched : Buffer.concat([this.carry, searched])
    let from = 0
    let keepFrom = Math.max(0, data.length - this.delimiter.length - 1)
    for (let at = data.indexOf(this.delimiter, from); at !== -1; at = data.indexOf(this.delimiter, from)) {
      const headStart = at + this.delimiter.length
      // Rack's header block runs to the first CRLF CRLF (Go's may end before, at an empty LF-only
      // line: within Rack's), and Rack takes a name from anywhere in it.
      const end = data.indexOf('\r\n\r\n', headStart)
      if (end === -1 || end - headStart > MAX_PART_HEADER) {
        if (data.length - headStart > MAX_PART_HEADER) { callback(lateError('a part header that does not end')); return }
        // The header goes on in the next chunk: keep it whole (bounded).
        keepFrom = at
        break
      }
      const head = data.subarray(headStart, end).toString('latin1')
      // Every name any parser could give the part (Content-ID and Content-Type name parts too).
      const names = multipartHeaderNames(head)
      const refused = names.find(isGraphqlPartName) ??
        // isFilePart reads header lines with their CRLF.
        (this.anyMapKey && !isFilePart(data.subarray(headStart, end + 2).toString('latin1')) ? names.find(this.namesMapKey) : undefined)
      if (refused !== undefined) { callback(lateError(`a part named ${JSON.stringify(refused)}`)); return }
      from = end
    }
    this.carry = Buffer.from(data.subarray(Math.max(keepFrom, from)))
    // Only the bytes received are passed on: the carry is a copy for the search.
    callback(null, chunk)
  }
}

function lateError (what: string): GateError {
  return new GateError('GRAPHQL_LATE_PARAMETER', `${errors.GRAPHQL_LATE_PARAMETER.message}: ${what}, after the bytes the request was decided from; send GraphQL parameters and credentials in the first parts (operations, map), files after them`)
}

function tooLarge (limit: number, where: string): string {
  return `413 Request Entity Too Large - this GraphQL request is over ${limit} bytes and names job token allowlist fields (the gate's fields, or GitLab's allowlist mutations) ${where}; the gate answers those only in requests of at most ${limit} bytes`
}

/** Whether the first part of a multipart body (`operations`, by the spec) names the fields. */
function firstPartNamesGateFields (text: string, contentType: string): boolean {
  const boundary = parseMultipartBoundary(contentType)
  if (boundary === null) return false
  const pieces = text.split('--' + boundary)
  // Complete only when the next delimiter was read too.
  return pieces.length >= 3 && namesGateFields(pieces[1]!, false)
}

/**
 * Hot path for GraphQL uploads: every chunk past the first MiB. Replays the bytes already read,
 * then passes the request's chunks through unchanged after searching each (with the end of the
 * one before, so a name split across chunks is found); a name errors the stream instead.
 */
class GateFieldsGuard extends Transform {
  private tail: Buffer

  /** `tokens`: also refuse an access token parameter (bodies that are not multipart, see the header). */
  constructor (prefix: Buffer, private readonly percent: boolean, private readonly limit: number, private readonly tokens = false) {
    super()
    this.tail = Buffer.from(prefix.subarray(Math.max(0, prefix.length - TAIL_BYTES)))
    this.push(prefix)
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // The chunk, and the seam with the bytes before it: a name (escaped: at most 342 bytes) that
    // starts before the chunk ends within its first TAIL_BYTES. Nothing larger is copied.
    const seam = Buffer.concat([this.tail, chunk.subarray(0, TAIL_BYTES)])
    if (bytesNameGateFields(chunk, this.percent) || bytesNameGateFields(seam, this.percent)) {
      // A GateError: whoever reads the body answers its code (the identity stage's read, the
      // proxy's forwarding).
      callback(new GateError('GRAPHQL_BODY_TOO_LARGE', tooLarge(this.limit, `past its first ${this.limit} bytes`)))
      return
    }
    if (bytesNamePackageMutation(chunk, this.percent) || bytesNamePackageMutation(seam, this.percent)) {
      callback(new GateError('GRAPHQL_BODY_TOO_LARGE', PACKAGE_MUTATION_TOO_LARGE(this.limit, `past its first ${this.limit} bytes`)))
      return
    }
    if (this.tokens && (bytesNameTokenParams(chunk, this.percent) || bytesNameTokenParams(seam, this.percent))) {
      callback(new GateError('GRAPHQL_FINE_GRAINED_BODY_TOO_LARGE', TOKEN_IN_LARGE_BODY))
      return
    }
    // A copy, so the chunk is not kept alive.
    this.tail = chunk.length >= TAIL_BYTES ? Buffer.from(chunk.subarray(chunk.length - TAIL_BYTES)) : seam.subarray(Math.max(0, seam.length - TAIL_BYTES))
    callback(null, chunk)
  }
}
