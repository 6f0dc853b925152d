// Credentials in JSON bodies too large to buffer, found while the bytes stream through.
//
// npm publish sends a package's tarball base64-encoded inside a JSON body, so a JSON body can be
// megabytes long. GitLab reads a JSON body's top-level members as parameters (Grape merges them
// into params; lib/gitlab/auth/auth_finders.rb reads `job_token`, `token`, ... from there), so a
// large body must not carry a credential past the gate. The guard is a Transform that lexes the
// body as it passes and reads it with exactly the rules of the buffered path
// (body-scan.ts, jsonCredentials):
// - only an object document has parameters; an array or scalar document gives none;
// - each top-level member (repeated keys included) is a parameter named by its key, read as Rack
//   reads names (paramCredential); its value is read as its leaves, at any depth: every string,
//   number (as JavaScript writes it) and `true`; `null`, `false` and "" are absent;
// - a leaf shaped like a job token (token-shape.ts) is one, whatever the key;
// - a body that is not JSON is refused (BODY_NOT_PARSEABLE), as JSON.parse would refuse it.
//
// A credential is decided when its value ends, which is before the document's closing bracket,
// so the guard errors before the last byte and the upstream never receives a complete body
// (Rails acts on a JSON body only once it is whole). Memory is bounded whatever the body: a
// nesting stack of at most maxDepth levels and the first MAX_TOKEN_BYTES + 1 characters of the
// string being read. A longer string is kept as that prefix and marked truncated: its shape is
// decided by its first characters, and it never equals the request's own token.

import { Transform, type TransformCallback } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import { paramCredentials, type Credential } from './credentials.ts'
import { IdentityError, MAX_TOKEN_BYTES } from './types.ts'

/** Deeper documents are refused (JSON_TOO_DEEP): the stack stays small. */
export const DEFAULT_MAX_JSON_DEPTH = 512

export interface JsonGuardOptions {
  /**
   * The job token the gate already enforces (from a header or the query). A member holding
   * exactly this token is the same credential repeated and passes; any other credential errors.
   * Without it, a job token in the body errors and other credentials pass (not the gate's business).
   */
  readonly allowedToken?: string
  /** Without allowedToken: refuse every credential, not only job tokens (package writes). */
  readonly refuseAnyCredential?: boolean
  /** Deepest nesting of arrays and objects read. Default 512. */
  readonly maxDepth?: number
  /**
   * A body sent without a Content-Type (body-scan.ts): read as JSON only when its first byte
   * after white space starts a JSON object (`{`, or `/` of a comment Ruby's parser skips), then
   * with every rule above; any other body passes unread.
   */
  readonly untyped?: boolean
  /**
   * With `untyped`: the route's API parses no such body (Workhorse takes it as the upload, Grape
   * refuses it, or the route reads no credential from a body): a body that turns out not to be a
   * JSON document GitLab could read passes on unread from there instead of being refused.
   * Credentials found before that point are decided as ever.
   */
  readonly lenient?: boolean
}

/** A credential found in a JSON body; `truncated` when its value was longer than a token can be. */
export type JsonCredentialHandler = (credential: Credential, truncated: boolean) => void

/** A Transform that forwards a JSON body unchanged and errors (IdentityError) at a credential it must not let through. */
export function createJsonGuard (options: JsonGuardOptions = {}): Transform {
  const allowed = options.allowedToken
  const scanner = new JsonScanner((c, truncated) => {
    if (allowed !== undefined) {
      if (truncated || c.secret !== allowed) throw new IdentityError('CREDENTIAL_AMBIGUOUS', `JSON member ${c.where} holds a credential other than the request's job token`)
    } else if (c.jobToken || options.refuseAnyCredential === true) {
      throw new IdentityError('JSON_CREDENTIAL_NOT_ALLOWED', `JSON member ${c.where} holds a ${c.jobToken ? 'job token' : 'credential'}`)
    }
  }, options.maxDepth)
  const decoder = new StringDecoder('utf8')
  const lenient = options.untyped === true && options.lenient === true
  /** A lenient guard's reading error that is no credential's: the body is no JSON GitLab reads. */
  const unread = (err: unknown): boolean => lenient && !(err instanceof IdentityError && CREDENTIAL_CODES.has(err.code))
  // Untyped: 'sniff' until the first byte that is not white space, then 'json' or 'pass'.
  let mode: 'sniff' | 'json' | 'pass' = options.untyped === true ? 'sniff' : 'json'
  /** Skipped before it: white space JSON does not allow (a BOM, \v, \f, NUL), which the scanner would refuse. */
  let odd = false
  return new Transform({
    transform (chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
      let from = 0
      if (mode === 'sniff') {
        for (; from < bytes.length && UNTYPED_LEADING.has(bytes[from]!); from++) odd ||= !JSON_SPACE.has(bytes[from]!)
        if (from === bytes.length) { callback(null, bytes.length > 0 ? bytes : undefined); return }
        mode = startsJsonObject(bytes[from]!) ? 'json' : 'pass'
        if (mode === 'json' && odd) {
          if (lenient) mode = 'pass'
          else { callback(new IdentityError('BODY_NOT_PARSEABLE', 'a body without a Content-Type that starts as JSON after white space JSON does not allow')); return }
        }
      }
      if (mode === 'pass') { callback(null, bytes.length > 0 ? bytes : undefined); return }
      try {
        scanner.write(decoder.write(from === 0 ? bytes : bytes.subarray(from)))
      } catch (err) {
        if (!unread(err)) { callback(err as Error); return }
        mode = 'pass'
      }
      callback(null, bytes.length > 0 ? bytes : undefined)
    },
    flush (callback: TransformCallback): void {
      if (mode !== 'json') { callback(); return }
      try {
        scanner.write(decoder.end())
        scanner.end()
      } catch (err) {
        if (!unread(err)) { callback(err as Error); return }
      }
      callback()
    }
  })
}

/** The errors that decide a credential; every other error of the scanner is about reading the body. */
const CREDENTIAL_CODES: ReadonlySet<string> = new Set(['CREDENTIAL_AMBIGUOUS', 'JSON_CREDENTIAL_NOT_ALLOWED'])

/** Bytes skipped before an untyped body's first (conservatively more than Ruby's JSON white space): white space, NUL, a UTF-8 BOM. */
const UNTYPED_LEADING: ReadonlySet<number> = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x00, 0xef, 0xbb, 0xbf])
/** JSON's own white space: any other UNTYPED_LEADING byte before the document makes it unparseable. */
const JSON_SPACE: ReadonlySet<number> = new Set([0x20, 0x09, 0x0a, 0x0d])

/** `{`, or `/`, which starts a comment Ruby's JSON skips: a JSON object could start so. Only an object gives Grape parameters (it merges a Hash only). */
function startsJsonObject (byte: number): boolean {
  return byte === 0x7b || byte === 0x2f
}

/**
 * Whether a whole body sent without a Content-Type could be a JSON object to Ruby's parser: its
 * first byte after UNTYPED_LEADING starts one (the untyped guard's test, for a buffered body).
 */
export function looksLikeJsonObject (bytes: Buffer): boolean {
  let i = 0
  while (i < bytes.length && UNTYPED_LEADING.has(bytes[i]!)) i++
  return i < bytes.length && startsJsonObject(bytes[i]!)
}

/** Every credential of a whole JSON body, as the guard reads it. Throws IdentityError where the guard errors. */
export function scanJson (bytes: Buffer, maxDepth = DEFAULT_MAX_JSON_DEPTH): Credential[] {
  const found: Credential[] = []
  const scanner = new JsonScanner(c => { found.push(c) }, maxDepth)
  scanner.write(bytes.toString('utf8'))
  scanner.end()
  return found
}

/**
 * Whether a JSON text (one JSON.parse accepted) nests arrays and objects deeper than `maxDepth`.
 * A buffered body is parsed whole, which has no such bound, but what reads the parsed value
 * afterwards recurses (JSON.stringify, graphql-js): the buffered readings keep the guard's bound.
 */
export function nestsDeeperThan (text: string, maxDepth = DEFAULT_MAX_JSON_DEPTH): boolean {
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      // A string: to its closing quote, escapes skipped.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i)
        if (d === 0x5c) i++
        else if (d === 0x22) break
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

// ---------------------------------------------------------------------------------------------

/** Characters of a string kept: a maximal token and one more, to tell "too long". */
const CAPTURE_LIMIT = MAX_TOKEN_BYTES + 1
/** A top-level key longer than this whose name Rack could still read as a credential's is refused. */
const LONGEST_PARAM_NAME = 16
/** Number text kept: JavaScript writes any longer number under a credential name as something else; it is kept truncated. */
const NUMBER_LIMIT = 1024

/**
 * Lexer states. Start: before the document (white space, then a value); KeyOrEnd: after `{`;
 * Key: after `,` in an object; ValueOrEnd: after `[`; AfterValue: after a value inside a
 * container (`,` or its closing bracket); Done: after the document (white space only).
 */
const S = { Start: 0, Value: 1, KeyOrEnd: 2, Key: 3, Colon: 4, ValueOrEnd: 5, AfterValue: 6, String: 7, Escape: 8, Unicode: 9, Number: 10, Literal: 11, Done: 12 } as const

const OBJECT = 1
const ARRAY = 2

/** Number grammar positions (RFC 8259): which characters may follow. */
const N = { Minus: 0, Zero: 1, Int: 2, Dot: 3, Frac: 4, E: 5, ESign: 6, Exp: 7 } as const

/**
 * Push lexer over the body's text (UTF-16, as JSON.parse reads it): write() any slicing of the
 * text, then end(). Calls onCredential for each credential leaf of a top-level member; throws
 * IdentityError BODY_NOT_PARSEABLE at the first character JSON.parse would refuse.
 */
export class JsonScanner {
  private state: number = S.Start
  private readonly stack: Uint8Array
  private depth = 0
  /** Characters seen before the document that JSON.parse refuses but String#trim drops (a body of only those is empty). */
  private trimmedOnly = false
  // The string being read.
  private text = ''
  private truncated = false
  private isKey = false
  private hex = 0
  private hexCount = 0
  // The number or literal being read.
  private num: number = N.Minus
  private literal = ''
  private literalAt = 0
  // The top-level member being read: the credential reading of its leaves, its name read once.
  private member: ((value: string) => Credential | null) | null = null
  private uncertainMember = false

  private readonly onCredential: JsonCredentialHandler

  constructor (onCredential: JsonCredentialHandler, maxDepth = DEFAULT_MAX_JSON_DEPTH) {
    this.onCredential = onCredential
    if (!Number.isSafeInteger(maxDepth) || maxDepth <= 0) throw new TypeError(`maxDepth must be a positive integer, got ${String(maxDepth)}`)
    this.stack = new Uint8Array(maxDepth)
  }

  write (chunk: string): void {
    let i = 0
    const n = chunk.length
    // Hot path: a body of megabytes is mostly one string (the base64 tarball), read by the inner
    // loop of the String state, which looks at each character once and copies only a prefix.
    while (i < n) {
      switch (this.state) {
        case S.String: {
          let j = i
          for (; j < n; j++) {
            const c = chunk.charCodeAt(j)
            if (c === 0x22 || c === 0x5c) break
            if (c < 0x20) this.fail('a control character in a string')
          }
          this.keep(chunk, i, j)
          if (j === n) return
          i = j + 1
          if (chunk.charCodeAt(j) === 0x5c) this.state = S.Escape
          else this.endString()
          continue
        }
        case S.Escape: {
          const c = chunk[i++]!
          const decoded = ESCAPES[c]
          if (decoded !== undefined) {
            this.keepChar(decoded)
            this.state = S.String
          } else if (c === 'u') {
            this.hex = 0
            this.hexCount = 0
            this.state = S.Unicode
          } else {
            this.fail('an invalid escape')
          }
          continue
        }
        case S.Unicode: {
          const d = hexValue(chunk.charCodeAt(i++))
          if (d < 0) this.fail('an invalid \\u escape')
          this.hex = this.hex * 16 + d
          if (++this.hexCount === 4) {
            // A surrogate, paired or not, is one UTF-16 unit here as in JSON.parse's result.
            this.keepChar(String.fromCharCode(this.hex))
            this.state = S.String
          }
          continue
        }
        case S.Number: {
          const c = chunk.charCodeAt(i)
          if (this.numberStep(c)) {
            if (this.text.length < NUMBER_LIMIT) this.text += chunk[i]
            else this.truncated = true
            i++
          } else {
            this.endNumber()
          }
          continue
        }
        case S.Literal: {
          if (chunk[i] !== this.literal[this.literalAt]) this.fail('an invalid literal')
          i++
          if (++this.literalAt === this.literal.length) {
            if (this.literal === 'true') this.leaf('true', false)
            this.endValue()
          }
          continue
        }
        default: {
          const c = chunk.charCodeAt(i)
          if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) { i++; continue }
          this.token(chunk, i)
          i++
        }
      }
    }
  }

  end (): void {
    if (this.state === S.Number) this.endNumber()
    if (this.state === S.Done) return
    // Nothing but white space (String#trim's): the buffered path reads no parameters from it.
    if (this.state === S.Start) return
    this.fail('the body ends inside the document')
  }

  /** A character outside strings, numbers and literals, not JSON white space. */
  private token (chunk: string, i: number): void {
    const ch = chunk[i]!
    switch (this.state) {
      case S.Start:
        if (TRIM_ONLY.test(ch)) {
          this.trimmedOnly = true
          return
        }
        if (this.trimmedOnly) this.fail('white space JSON does not allow before the document')
        this.value(ch)
        return
      case S.Value:
        this.value(ch)
        return
      case S.ValueOrEnd:
        if (ch === ']') { this.close(ARRAY); return }
        this.value(ch)
        return
      case S.KeyOrEnd:
        if (ch === '}') { this.close(OBJECT); return }
        this.key(ch)
        return
      case S.Key:
        this.key(ch)
        return
      case S.Colon:
        if (ch !== ':') this.fail('no colon after a key')
        this.state = S.Value
        return
      case S.AfterValue: {
        const top = this.stack[this.depth - 1]
        if (ch === ',') { this.state = top === OBJECT ? S.Key : S.Value; return }
        if (ch === '}' && top === OBJECT) { this.close(OBJECT); return }
        if (ch === ']' && top === ARRAY) { this.close(ARRAY); return }
        this.fail('an unexpected character after a value')
        return
      }
      case S.Done:
        this.fail('more after the document')
    }
  }

  private value (ch: string): void {
    switch (ch) {
      case '{':
        this.open(OBJECT)
        this.state = S.KeyOrEnd
        return
      case '[':
        this.open(ARRAY)
        this.state = S.ValueOrEnd
        return
      case '"':
        this.beginString(false)
        return
      case 't': case 'f': case 'n':
        this.literal = ch === 't' ? 'true' : ch === 'f' ? 'false' : 'null'
        this.literalAt = 1
        this.state = S.Literal
        return
      default: {
        const c = ch.charCodeAt(0)
        if (c !== 0x2d && (c < 0x30 || c > 0x39)) this.fail('an unexpected character where a value starts')
        this.text = ch
        this.truncated = false
        this.num = c === 0x2d ? N.Minus : c === 0x30 ? N.Zero : N.Int
        this.state = S.Number
      }
    }
  }

  private key (ch: string): void {
    if (ch !== '"') this.fail('a key that is not a string')
    this.beginString(true)
  }

  private open (kind: number): void {
    if (this.depth === this.stack.length) throw new IdentityError('JSON_TOO_DEEP', `JSON body nested deeper than ${this.stack.length} levels`)
    this.stack[this.depth++] = kind
  }

  private close (kind: number): void {
    if (this.stack[this.depth - 1] !== kind) this.fail('a mismatched closing bracket')
    this.depth--
    this.endValue()
  }

  private beginString (isKey: boolean): void {
    this.isKey = isKey
    this.text = ''
    this.truncated = false
    this.state = S.String
  }

  private keep (chunk: string, from: number, to: number): void {
    if (from === to) return
    const room = CAPTURE_LIMIT - this.text.length
    if (room <= 0) {
      this.truncated = true
      return
    }
    if (to - from > room) {
      this.truncated = true
      to = from + room
    }
    this.text += chunk.slice(from, to)
  }

  private keepChar (ch: string): void {
    if (this.text.length < CAPTURE_LIMIT) this.text += ch
    else this.truncated = true
  }

  private endString (): void {
    if (this.isKey) {
      if (this.depth === 1 && this.stack[0] === OBJECT) this.topLevelKey()
      this.state = S.Colon
      return
    }
    if (this.text !== '') this.leaf(this.text, this.truncated)
    this.endValue()
  }

  /** The name of a top-level member, as far as it can matter. */
  private topLevelKey (): void {
    this.member = paramCredentials(this.text, 'body')
    this.uncertainMember = false
    if (!this.truncated) return
    // A name as credentials.ts's normalizeParamName reads it: after leading white space and
    // brackets, up to the next bracket (more than Rack reads as a credential: the safe side). Of
    // a key cut short, that is known unless it could still be a short name running on past the cut.
    const m = /^[\s[\]]*([^[\]]*)([[\]])?/.exec(this.text)!
    if (m[2] === undefined && m[1]!.length <= LONGEST_PARAM_NAME) this.uncertainMember = true
  }

  private numberStep (c: number): boolean {
    const digit = c >= 0x30 && c <= 0x39
    switch (this.num) {
      case N.Minus:
        if (!digit) this.fail('a minus sign without digits')
        this.num = c === 0x30 ? N.Zero : N.Int
        return true
      case N.Zero:
      case N.Int:
        if (digit && this.num === N.Int) return true
        if (digit) this.fail('a number with a leading zero')
        if (c === 0x2e) { this.num = N.Dot; return true }
        if (c === 0x65 || c === 0x45) { this.num = N.E; return true }
        return false
      case N.Dot:
        if (!digit) this.fail('a decimal point without digits')
        this.num = N.Frac
        return true
      case N.Frac:
        if (digit) return true
        if (c === 0x65 || c === 0x45) { this.num = N.E; return true }
        return false
      case N.E:
        if (c === 0x2b || c === 0x2d) { this.num = N.ESign; return true }
        if (!digit) this.fail('an exponent without digits')
        this.num = N.Exp
        return true
      case N.ESign:
        if (!digit) this.fail('an exponent without digits')
        this.num = N.Exp
        return true
      default:
        return digit
    }
  }

  private endNumber (): void {
    if (this.num === N.Minus || this.num === N.Dot || this.num === N.E || this.num === N.ESign) this.fail('a number cut short')
    this.leaf(this.truncated ? this.text : String(Number(this.text)), this.truncated)
    this.endValue()
  }

  /** A leaf of a top-level member's value. */
  private leaf (value: string, truncated: boolean): void {
    if (this.depth === 0 || this.stack[0] !== OBJECT || this.member === null) return
    if (this.uncertainMember) throw new IdentityError('JSON_KEY_TOO_LONG', 'a top-level JSON key too long to read could name a credential')
    const c = this.member(value)
    if (c !== null) this.onCredential(c, truncated)
  }

  private endValue (): void {
    if (this.depth === 0) {
      this.state = S.Done
      return
    }
    this.state = S.AfterValue
  }

  private fail (what: string): never {
    throw new IdentityError('BODY_NOT_PARSEABLE', `JSON body does not parse: ${what}`)
  }
}

const ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }

/** What String#trim drops besides JSON's white space: a body of only these reads as empty. */
const TRIM_ONLY = /^[\v\f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]$/

function hexValue (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  return -1
}
