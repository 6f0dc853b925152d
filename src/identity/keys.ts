// Verification keys for JWTs: a PEM public key, a JWKS file, or a JWKS URL with rotation.

import { readFileSync } from 'node:fs'
import { createPublicKey, type KeyObject } from 'node:crypto'
import { createLocalJWKSet, createRemoteJWKSet, errors, jwksCache, type JSONWebKeySet, type JWTVerifyGetKey, type ExportedJWKSCache } from 'jose'

export type KeySource =
  /** An RSA public key (SPKI PEM). */
  | { readonly pem: string }
  /** A JWKS document on disk, read once at start-up. */
  | { readonly jwksFile: string }
  | {
    readonly jwksUrl: string
    /** Least time between two fetches for an unknown `kid`, and between retries after a failed fetch. Default 30 s. */
    readonly cooldownMs?: number
    /** Keys are refetched when older than this. Default 10 min. */
    readonly cacheMaxAgeMs?: number
    /** Bound on one fetch. Default 5 s. */
    readonly timeoutMs?: number
  }

export type VerificationKey = KeyObject | JWTVerifyGetKey

/** The keys cannot be fetched and none that was fetched before fits: a 503, not a verdict on the token. */
export class KeysUnavailableError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'KeysUnavailableError'
  }
}

export interface KeyOptions {
  /** Told when a key set refresh fails (never given a token). */
  readonly onWarning?: (message: string) => void
  /** Told after each JWKS fetch attempt: true when a new key set arrived, false when it failed (metrics). */
  readonly onRefresh?: (ok: boolean) => void
}

/** Builds the key once; a bad PEM or JWKS file stops the start with a TypeError. */
export function createVerificationKey (source: KeySource, options: KeyOptions = {}): VerificationKey {
  if ('pem' in source) {
    let key: KeyObject
    try {
      key = createPublicKey(source.pem)
    } catch (err) {
      throw new TypeError(`verification key is not a PEM public key: ${(err as Error).message}`)
    }
    if (key.asymmetricKeyType !== 'rsa') throw new TypeError(`verification key must be an RSA key, got ${String(key.asymmetricKeyType)}`)
    return key
  }
  if ('jwksFile' in source) {
    let jwks: JSONWebKeySet
    try {
      jwks = JSON.parse(readFileSync(source.jwksFile, 'utf8')) as JSONWebKeySet
      return createLocalJWKSet(jwks)
    } catch (err) {
      throw new TypeError(`JWKS file ${source.jwksFile} cannot be used: ${(err as Error).message}`)
    }
  }
  return createRotatingKeySet(source, options)
}

/**
 * jose's remote key set refetches on an unknown `kid` (at most once per cooldown) and when its
 * keys are older than cacheMaxAge, but a failed refetch makes verification fail even for keys it
 * had. This wrapper keeps the last good set: when a fetch fails it verifies with those keys, and
 * for a cooldown it does not ask the failing endpoint again, so a JWKS outage neither rejects
 * valid tokens nor adds a timeout to every request.
 */
function createRotatingKeySet (source: { jwksUrl: string, cooldownMs?: number, cacheMaxAgeMs?: number, timeoutMs?: number }, options: KeyOptions): JWTVerifyGetKey {
  let url: URL
  try {
    url = new URL(source.jwksUrl)
  } catch {
    throw new TypeError(`JWKS URL is not a URL: ${source.jwksUrl}`)
  }
  const cooldownMs = source.cooldownMs ?? 30_000
  // jose fills this in on each successful fetch (its jwksCache option).
  const cache: Record<string, never> | ExportedJWKSCache = {}
  const remote = createRemoteJWKSet(url, {
    cooldownDuration: cooldownMs,
    cacheMaxAge: source.cacheMaxAgeMs ?? 600_000,
    timeoutDuration: source.timeoutMs ?? 5_000,
    [jwksCache]: cache
  })
  let lastGood: { uat: number, keys: JWTVerifyGetKey } | undefined
  let failedAt = -Infinity

  const remember = (): void => {
    // jose records each successful fetch in `cache`; rebuild the fallback only when it changed.
    const fetched = cache as Partial<ExportedJWKSCache>
    if (fetched.uat !== undefined && fetched.jwks !== undefined && fetched.uat !== lastGood?.uat) {
      lastGood = { uat: fetched.uat, keys: createLocalJWKSet(fetched.jwks) }
      options.onRefresh?.(true)
    }
  }

  type GetKeyResult = Awaited<ReturnType<JWTVerifyGetKey>>
  const fromLastGood = async (keys: JWTVerifyGetKey, header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1]): Promise<GetKeyResult> => {
    try {
      return await keys(header, token)
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey) throw new KeysUnavailableError('no known key has this kid and the key set cannot be refreshed', { cause: err })
      throw err
    }
  }

  return async (header, token) => {
    if (lastGood !== undefined && Date.now() - failedAt < cooldownMs) return await fromLastGood(lastGood.keys, header, token)
    try {
      const key = await remote(header, token)
      remember()
      return key
    } catch (err) {
      if (isVerdict(err)) {
        remember()
        throw err
      }
      failedAt = Date.now()
      options.onRefresh?.(false)
      options.onWarning?.(`JWKS refresh from ${url.origin}${url.pathname} failed (${(err as Error).message}); ${lastGood === undefined ? 'no keys to fall back on' : 'using the last good keys'}`)
      if (lastGood === undefined) throw new KeysUnavailableError('the key set cannot be fetched', { cause: err })
      return await fromLastGood(lastGood.keys, header, token)
    }
  }
}

/** Errors that are an answer about the token, not about reaching the key set. */
function isVerdict (err: unknown): boolean {
  return err instanceof errors.JWKSNoMatchingKey ||
    err instanceof errors.JWKSMultipleMatchingKeys ||
    err instanceof errors.JOSEAlgNotAllowed ||
    err instanceof errors.JOSENotSupported
}
