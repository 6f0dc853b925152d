// Keys and tokens for tests: RSA key pairs, job-token JWTs (`glcbt-` + JWT, as GitLab signs them,
// lib/ci/job_token/jwt.rb), GitLab CI ID tokens, and the forgeries a gate must refuse.

import { randomBytes } from 'node:crypto'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose'

export interface TestKeys {
  readonly kid: string
  readonly privateKey: CryptoKey
  readonly publicKey: CryptoKey
  readonly publicPem: string
  /** The public key as a JWK with kid, alg and use, as a JWKS endpoint lists it. */
  readonly publicJwk: JWK
}

export async function createTestKeys (kid = 'key-1'): Promise<TestKeys> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  const publicJwk = { ...await exportJWK(publicKey), kid, alg: 'RS256', use: 'sig' }
  return { kid, privateKey, publicKey, publicPem: await exportSPKI(publicKey), publicJwk }
}

export const GITLAB_ISSUER = 'https://gitlab.example.com'
export const JOB_TOKEN_AUDIENCE = 'gitlab-authz-token'

export interface SignOptions {
  readonly issuer?: string
  readonly audience?: string
  /** Seconds from now; negative for an expired token. Default 3600. */
  readonly expiresIn?: number
  /** Seconds from now for nbf; default -5 (see sign()). */
  readonly notBefore?: number
  readonly kid?: string | null
}

const now = (): number => Math.floor(Date.now() / 1000)

async function sign (keys: TestKeys, payload: JWTPayload, o: SignOptions, defaults: { issuer: string, audience: string }): Promise<string> {
  const header: { alg: string, typ: string, kid?: string } = { alg: 'RS256', typ: 'JWT' }
  const kid = o.kid === undefined ? keys.kid : o.kid
  if (kid !== null) header.kid = kid
  return await new SignJWT(payload)
    .setProtectedHeader(header)
    .setIssuer(o.issuer ?? defaults.issuer)
    .setAudience(o.audience ?? defaults.audience)
    .setIssuedAt()
    // A few seconds before now by default: tests that read a clock before signing (a manual clock
    // for the caches) must not meet a token signed in the next second as not yet valid.
    .setNotBefore(now() + (o.notBefore ?? -5))
    .setExpirationTime(now() + (o.expiresIn ?? 3600))
    .setJti(randomBytes(8).toString('hex'))
    .sign(keys.privateKey)
}

/** A JWT job token for job `jobId`: `glcbt-` + JWT with GitLab's claims (no project id). */
export async function signJobToken (keys: TestKeys, jobId: number, o: SignOptions = {}): Promise<string> {
  const jwt = await sign(keys, { sub: `gid://gitlab/Ci::Build/${jobId}`, version: '0.1.0', scoped_user_id: null, organization_id: '1', cell_id: '1' }, o,
    { issuer: GITLAB_ISSUER, audience: JOB_TOKEN_AUDIENCE })
  return 'glcbt-' + jwt
}

export interface IdTokenClaims {
  readonly project_id: string
  readonly project_path: string
  readonly namespace_id: string
  readonly namespace_path: string
  readonly user_id: string
  readonly job_id: string
  readonly [claim: string]: unknown
}

/** A GitLab CI ID token (`id_tokens:`), claims as GitLab writes them (ids as strings). */
export async function signIdToken (keys: TestKeys, claims: IdTokenClaims, o: SignOptions = {}): Promise<string> {
  return await sign(keys, { sub: `project_path:${claims.project_path}:ref_type:branch:ref:main`, ...claims }, o,
    { issuer: GITLAB_ISSUER, audience: 'https://gate.example.com' })
}

/** A legacy opaque job token: `glcbt-<partition hex>_<random>`. */
export function legacyJobToken (): string {
  return `glcbt-64_${randomBytes(15).toString('base64url')}`
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

/** An unsigned token (`alg: none`) claiming whatever it likes. */
export function unsignedJobToken (payload: JWTPayload): string {
  return `glcbt-${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`
}

/** The key-confusion forgery: HS256 with the RSA public key (PEM text) as the HMAC secret. */
export async function hs256WithPublicKey (keys: TestKeys, payload: JWTPayload): Promise<string> {
  const jwt = await new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: keys.kid })
    .sign(new TextEncoder().encode(keys.publicPem))
  return 'glcbt-' + jwt
}

/** Standard claims for a forgery that would otherwise pass every claim check. */
export function plausibleClaims (jobId: number): JWTPayload {
  return { sub: `gid://gitlab/Ci::Build/${jobId}`, iss: GITLAB_ISSUER, aud: JOB_TOKEN_AUDIENCE, iat: now(), nbf: now(), exp: now() + 3600 }
}
