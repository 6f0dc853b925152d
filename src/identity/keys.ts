// Verification keys for JWTs: a PEM public key, a JWKS file, or a JWKS URL with rotation.

import { readFileSync } from 'node:fs'
import { createPublicKey, type KeyObject } from 'node:crypto'
import { createLocalJWKSet, createRemoteJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'
import type { Clock } from './cache.ts'

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
  /** Epoch milliseconds for a JWKS URL's max age and cooldowns; tests pass one they move by hand. Default Date. */
  readonly clock?: Clock
}

/**
 * A key source that cannot be used (a file that is no PEM public key or JWKS, a URL that cannot
 * be fetched): the start stops, and the message names the file, never quoting its text.
 */
export class KeySourceError extends TypeError {
  constructor (message: string) {
    super(message)
    this.name = 'KeySourceError'
  }
}

/** Builds the key once; a bad PEM or JWKS file stops the start with a KeySourceError. */
export function createVerificationKey (source: KeySource, options: KeyOptions = {}): VerificationKey {
  if ('pem' in source) {
    let key: KeyObject
    try {
      key = createPublicKey(source.pem)
    } catch (err) {
      throw new KeySourceError(`verification key is not a PEM public key: ${(err as Error).message}`)
    }
    if (key.asymmetricKeyType !== 'rsa') throw new KeySourceError(`verification key must be an RSA key, got ${String(key.asymmetricKeyType)}`)
    return key
  }
  if ('jwksFile' in source) {
    let text: string
    try {
      text = readFileSync(source.jwksFile, 'utf8')
    } catch (err) {
      throw new KeySourceError(`JWKS file ${source.jwksFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).name}`)
    }
    let jwks: unknown
    try {
      jwks = JSON.parse(text)
    } catch {
      // V8's message quotes the text around the error, which may be a secret the file holds.
      throw new KeySourceError(`JWKS file ${source.jwksFile} is not valid JSON`)
    }
    try {
      return createLocalJWKSet(jwks as JSONWebKeySet)
    } catch (err) {
      throw new KeySourceError(`JWKS file ${source.jwksFile} cannot be used: ${(err as Error).message}`)
    }
  }
  return createRotatingKeySet(source, options)
}

/**
 * The keys of a JWKS URL, refetched when older than cacheMaxAge and on an unknown `kid` (at most
 * once per cooldown, as GitLab rotates keys). jose fetches (its timeout, headers and checks of
 * the answer); when to fetch is decided here, on the injected clock. A failed fetch keeps the
 * last good set: it verifies with those keys and, for a cooldown, does not ask the failing
 * endpoint again, so a JWKS outage neither rejects valid tokens nor adds a timeout to every
 * request. Without a last good set the cooldown holds too (503 meanwhile).
 */
function createRotatingKeySet (source: { jwksUrl: string, cooldownMs?: number, cacheMaxAgeMs?: number, timeoutMs?: number }, options: KeyOptions): JWTVerifyGetKey {
  let url: URL
  try {
    url = new URL(source.jwksUrl)
  } catch {
    throw new KeySourceError('JWKS URL is not a URL')
  }
  // fetch() refuses it, and its error (the warning below) quotes the URL whole.
  if (url.username !== '' || url.password !== '') throw new KeySourceError('JWKS URL must not carry a user or password')
  const cooldownMs = source.cooldownMs ?? 30_000
  const maxAgeMs = source.cacheMaxAgeMs ?? 600_000
  const clock = options.clock ?? Date
  const remote = createRemoteJWKSet(url, { timeoutDuration: source.timeoutMs ?? 5_000 })
  interface KeySet { readonly get: JWTVerifyGetKey, readonly fetchedAt: number }
  let good: KeySet | undefined
  let failedAt = -Infinity
  let refreshing: Promise<KeySet> | undefined

  /** One fetch at a time; its outcome is counted once, whoever waits on it. */
  const refresh = (): Promise<KeySet> => {
    refreshing ??= remote.reload().then(() => {
      good = { get: createLocalJWKSet(remote.jwks() ?? { keys: [] }), fetchedAt: clock.now() }
      options.onRefresh?.(true)
      return good
    }, (err: unknown) => {
      failedAt = clock.now()
      options.onRefresh?.(false)
      options.onWarning?.(`JWKS refresh from ${url.origin}${url.pathname} failed (${(err as Error).message}); ${good === undefined ? 'no keys to fall back on' : 'using the last good keys'}`)
      throw err
    }).finally(() => { refreshing = undefined })
    return refreshing
  }

  type GetKeyResult = Awaited<ReturnType<JWTVerifyGetKey>>
  const fromLastGood = async (keys: KeySet, header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1]): Promise<GetKeyResult> => {
    try {
      return await keys.get(header, token)
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey) throw new KeysUnavailableError('no known key has this kid and the key set cannot be refreshed', { cause: err })
      throw err
    }
  }

  return async (header, token) => {
    if (clock.now() - failedAt < cooldownMs) {
      // Without keys to fall back on, still not asked again for a cooldown: a request carrying
      // any JWT would otherwise make one fetch of a failing endpoint, at the sender's rate.
      if (good === undefined) throw new KeysUnavailableError('the key set cannot be fetched (the last fetch failed)')
      return await fromLastGood(good, header, token)
    }
    try {
      let keys = good
      // True once this token has waited on a fetch: an unknown kid is then a verdict.
      let fetched = false
      if (keys === undefined || clock.now() - keys.fetchedAt >= maxAgeMs) {
        keys = await refresh()
        fetched = true
      }
      try {
        return await keys.get(header, token)
      } catch (err) {
        if (!(err instanceof errors.JWKSNoMatchingKey) || fetched) throw err
        // Keys fetched before this token came, too recently to fetch again: GitLab may have
        // rotated since. Not a verdict (a 401, remembered for the negative TTL, refused a valid
        // token past the cooldown), a 503 until the cooldown lets the keys be fetched again.
        if (clock.now() - keys.fetchedAt < cooldownMs) throw new KeysUnavailableError('no key fetched has this kid, and the key set was fetched too recently to fetch it again', { cause: err })
      }
      // An unknown kid past the cooldown: GitLab may have rotated its keys.
      return await (await refresh()).get(header, token)
    } catch (err) {
      if (isVerdict(err) || err instanceof KeysUnavailableError) throw err
      if (good === undefined) throw new KeysUnavailableError('the key set cannot be fetched', { cause: err })
      return await fromLastGood(good, header, token)
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
