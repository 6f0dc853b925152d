// Local checks of JWTs: shape, algorithm, time claims and (with a key) signature, issuer and
// audience, each failure mapped to a stable code. Runs before any upstream call, so a forged or
// stale token costs no more than a signature check.

import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose'
import type { Clock } from './cache.ts'
import { KeysUnavailableError, type VerificationKey } from './keys.ts'
import { isBareJobTokenJwt, jobTokenBody } from './token-shape.ts'
import { IdentityError, MAX_TOKEN_BYTES } from './types.ts'

/** Three base64url parts; an empty signature (alg none) still has the shape and fails on its alg. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/
/** Printable ASCII without space: a token is sent on in a header and compared byte for byte. */
const TOKEN_CHARS = /^[\x21-\x7e]+$/

export interface JwtCheckOptions {
  /** Accepted algorithms. Default RS256 only: `none` and HMAC (the key-confusion attack) are refused. */
  readonly algorithms?: readonly string[]
  readonly issuer?: string
  /** Expected `aud`; null checks none. */
  readonly audience?: string | readonly string[] | null
  /** Allowed clock skew in seconds for exp/nbf. Default 0. */
  readonly clockToleranceSec?: number
  /** Allowed clock skew in seconds for nbf alone, when larger than clockToleranceSec. */
  readonly notBeforeToleranceSec?: number
  /** Epoch milliseconds that exp and nbf are checked against; tests pass one they move by hand. Default Date. */
  readonly clock?: Clock
}

/** Refuses what no resolver accepts: empty, over 8192 bytes, or characters no token has. */
export function checkTokenShape (token: string): void {
  if (token.length === 0) throw new IdentityError('TOKEN_MALFORMED', 'empty token')
  if (token.length > MAX_TOKEN_BYTES || Buffer.byteLength(token) > MAX_TOKEN_BYTES) {
    throw new IdentityError('TOKEN_TOO_LONG', `token is over ${MAX_TOKEN_BYTES} bytes`)
  }
  if (!TOKEN_CHARS.test(token)) throw new IdentityError('TOKEN_MALFORMED', 'token has characters outside printable ASCII')
}

/**
 * The JWT inside a job token (`glcbt-` + JWT, or `<instance prefix>-glcbt-` + JWT, or the JWT
 * alone: isBareJobTokenJwt), or null for a legacy opaque token.
 */
export function jobTokenJwt (token: string): string | null {
  const rest = jobTokenBody(token) ?? (isBareJobTokenJwt(token) ? token : null)
  if (rest === null) return null
  // Legacy tokens are `glcbt-<hex>_<random>`, without a dot; anything with one must be a JWT.
  if (!rest.includes('.')) return null
  if (!JWT_SHAPE.test(rest)) throw new IdentityError('TOKEN_MALFORMED', 'job token is not a well-formed JWT')
  return rest
}

/**
 * Checks a JWT and returns its payload. Without a key only what needs none is checked (shape,
 * algorithm, exp, nbf, iss, aud): that filters garbage and stale tokens, not forgeries.
 */
export async function checkJwt (jwt: string, key: VerificationKey | undefined, options: JwtCheckOptions): Promise<JWTPayload> {
  if (!JWT_SHAPE.test(jwt)) throw new IdentityError('TOKEN_MALFORMED', 'not a well-formed JWT')
  const algorithms = options.algorithms ?? ['RS256']
  let alg: unknown
  let payload: JWTPayload
  try {
    alg = decodeProtectedHeader(jwt).alg
    payload = decodeJwt(jwt)
  } catch (err) {
    throw new IdentityError('TOKEN_MALFORMED', 'JWT header or payload does not decode', { cause: err })
  }
  if (typeof alg !== 'string' || !algorithms.includes(alg)) throw new IdentityError('TOKEN_ALG_NOT_ALLOWED', `JWT algorithm ${String(alg).slice(0, 16)} is not accepted`)
  if (typeof payload.exp !== 'number') throw new IdentityError('TOKEN_MALFORMED', 'JWT has no exp claim')

  const tolerance = options.clockToleranceSec ?? 0
  const nbfTolerance = Math.max(tolerance, options.notBeforeToleranceSec ?? 0)
  const audience = options.audience === null || options.audience === undefined ? undefined : [...(typeof options.audience === 'string' ? [options.audience] : options.audience)]
  if (key === undefined) {
    const now = (options.clock ?? Date).now() / 1000
    if (payload.exp <= now - tolerance) throw new IdentityError('TOKEN_EXPIRED', 'JWT has expired')
    if (typeof payload.nbf === 'number' && payload.nbf > now + nbfTolerance) throw new IdentityError('TOKEN_NOT_YET_VALID', 'JWT is not valid yet')
    if (options.issuer !== undefined && payload.iss !== options.issuer) throw new IdentityError('TOKEN_WRONG_ISSUER', 'JWT issuer does not match')
    if (audience !== undefined) {
      // Unverified, so of any JSON type: only a string or an array of them is an audience.
      const aud: unknown[] = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : []
      if (!aud.some(a => typeof a === 'string' && audience.includes(a))) throw new IdentityError('TOKEN_WRONG_AUDIENCE', 'JWT audience does not match')
    }
    return payload
  }

  let verified: JWTPayload
  try {
    // jose has one tolerance for exp and nbf: the larger one here, exp checked again below.
    verified = (await jwtVerify(jwt, key as Parameters<typeof jwtVerify>[1], {
      algorithms: [...algorithms],
      issuer: options.issuer,
      audience,
      clockTolerance: nbfTolerance,
      currentDate: options.clock === undefined ? undefined : new Date(options.clock.now())
    })).payload
  } catch (err) {
    throw joseFailure(err)
  }
  if ((verified.exp as number) <= (options.clock ?? Date).now() / 1000 - tolerance) throw new IdentityError('TOKEN_EXPIRED', 'JWT has expired')
  return verified
}

/** The stable code for a jose (or key set) failure. */
export function joseFailure (err: unknown): IdentityError {
  if (err instanceof IdentityError) return err
  if (err instanceof KeysUnavailableError) return new IdentityError('IDENTITY_UPSTREAM_UNAVAILABLE', err.message, { cause: err })
  if (err instanceof errors.JWTExpired) return new IdentityError('TOKEN_EXPIRED', 'JWT has expired')
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'nbf': return new IdentityError('TOKEN_NOT_YET_VALID', 'JWT is not valid yet')
      case 'iss': return new IdentityError('TOKEN_WRONG_ISSUER', 'JWT issuer does not match')
      case 'aud': return new IdentityError('TOKEN_WRONG_AUDIENCE', 'JWT audience does not match')
      default: return new IdentityError('TOKEN_CLAIMS_INVALID', `JWT claim ${err.claim} is invalid`)
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new IdentityError('TOKEN_ALG_NOT_ALLOWED', 'JWT algorithm is not accepted')
  if (err instanceof errors.JWSSignatureVerificationFailed) return new IdentityError('TOKEN_BAD_SIGNATURE', 'JWT signature does not verify')
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported) {
    return new IdentityError('TOKEN_BAD_SIGNATURE', 'no usable key for this JWT')
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return new IdentityError('TOKEN_MALFORMED', 'JWT is invalid')
  // Anything else (a key that cannot be imported, a bug) is not the token's fault: never a verdict.
  return new IdentityError('IDENTITY_LOOKUP_FAILED', `JWT verification failed unexpectedly (${(err as Error)?.name ?? 'error'})`, { cause: err })
}
