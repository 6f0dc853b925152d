// What a CI/CD job token looks like, in every place a secret could be one (docs/identity.md,
// "Token shapes"). GitLab issues `glcbt-...`, or `<instance prefix>-glcbt-...` once an
// administrator sets `instance_token_prefix` (lib/ci/job_token/jwt.rb builds its prefix with
// Authn::TokenField::PrefixHelper.prepend_instance_prefix, lib/authn/token_field/prefix_helper.rb:
// "#{instance_prefix}-#{prefix}"; newer versions join them without the hyphen,
// "#{instance_prefix}#{prefix}", so `<instance prefix>glcbt-...`), and decodes these forms. A job
// token the gate does not recognise is forwarded unchecked, so recognition does not depend on
// knowing the prefix: any prefix GitLab could have set is recognised, with or without the hyphen,
// whatever GATE_INSTANCE_TOKEN_PREFIX says.

/** Every CI/CD job token has this, after the instance prefix if there is one. */
export const JOB_TOKEN_MARK = 'glcbt-'

/**
 * Characters and length accepted in an instance prefix: every visible character, none of white
 * space or ASCII control (bytes 0x80-0xff too: a header's UTF-8, read as Latin-1). GitLab's own validation of `instance_token_prefix` was not found in the GitLab
 * source at hand (`personal_access_token_prefix` takes letters, digits and `_+=/@:.-`, at most
 * 20), and a prefix GitLab allows that the gate did not take would have its job tokens forwarded
 * unchecked (`acme~-glcbt-...` as Bearer), so the gate takes any a header or parameter can carry
 * as one word, up to 64. Wider than GitLab can only recognise more.
 */
const PREFIX_CHARS = /^[!-~\u0080-\uffff]{1,64}$/
/**
 * `<prefix>glcbt-` at the start: a prefix of up to 64 characters and the hyphen, or none;
 * greedy, so a prefix that itself contains `glcbt` is whole.
 */
const PREFIXED = /^[!-~\u0080-\uffff]{1,65}glcbt-/
const MAX_PREFIX = 64

/** True when `glcbt-` starts within the first MAX_PREFIX + 2 characters, after at least one. */
function markNearStart (secret: string): boolean {
  // lastIndexOf from MAX_PREFIX + 1 looks at the start of the string only: a 64 KiB body value
  // costs what a header does.
  return secret.lastIndexOf(JOB_TOKEN_MARK, MAX_PREFIX + 1) > 0
}

/**
 * True when GitLab could read `secret` as a CI/CD job token: `glcbt-...`, `<prefix>-glcbt-...` or
 * `<prefix>glcbt-...`, or the JWT of one without its prefix (isBareJobTokenJwt).
 *
 * Hot path: runs on every header, parameter and body leaf that may hold a credential. Nearly
 * all of them have no `-glcbt-` near their start; a bounded search answers those without a
 * regular expression, whatever their length.
 */
export function isJobTokenShape (secret: string): boolean {
  if (secret.startsWith(JOB_TOKEN_MARK)) return true
  return (markNearStart(secret) && PREFIXED.test(secret)) || isBareJobTokenJwt(secret)
}

/**
 * The start of a JWT as GitLab signs one: a compact JSON header (`{"` is `eyJ`), then the payload
 * between the first two dots. What follows is not read: ruby-jwt splits with Ruby's `split('.')`,
 * which drops trailing empty parts (`h.p.s.` is three), and decodes the signature with
 * `Base64.decode64`, which skips characters outside the alphabet, so GitLab verifies more
 * spellings of a token than the three clean parts.
 */
const BARE_JWT = /^eyJ[A-Za-z0-9_-]*\.([A-Za-z0-9_-]+)\./
/**
 * The subject of a job token JWT (lib/authn/tokens/jwt.rb, `rsa_encode`: the job's global ID), as
 * a member of the payload's JSON text: GitLab's JSON writes `sub` and these characters as they
 * are, `/` perhaps as `\/` (the json gem's script_safe), and no space between the parts; any
 * white space JSON allows is taken too.
 */
const BUILD_SUBJECT = /"sub"[\t\n\r ]*:[\t\n\r ]*"gid:\\?\/\\?\/gitlab\\?\/Ci::Build\\?\//

/**
 * True for a job token JWT without `glcbt-`: a JWT whose subject is a CI build. GitLab's first
 * JWT job tokens (lib/ci/job_token/jwt/decode.rb, Ci::JobToken::Jwt::Decode) strip the prefix
 * with `delete_prefix`, which leaves a token without it as it is, and decode the rest, and
 * `find_user_from_job_bearer_token` hands any Bearer to Ci::AuthJobFinder: there the JWT alone
 * is the job's credential, as Bearer, `access_token=`, `token=` or anywhere else a job token is
 * read. The payload is read unverified (a forged one is GitLab's to refuse, after the gate has
 * refused it too). A string that does not start as a JWT costs a comparison of three characters.
 *
 * The payload's text is searched for the subject, not parsed: this runs on every body leaf, and
 * JSON.parse throws on a payload that is not JSON, an exception per `eyJ.AAAA.` that made a
 * body of them cost twenty times the CPU of any other. A `sub` found anywhere in the payload
 * (nested, or beside another `sub`) is read as the subject: only more JWTs are job tokens, and
 * GitLab signs none with a build's ID there that is not one.
 */
export function isBareJobTokenJwt (secret: string): boolean {
  if (!secret.startsWith('eyJ')) return false
  const m = BARE_JWT.exec(secret)
  return m !== null && BUILD_SUBJECT.test(Buffer.from(m[1]!, 'base64url').toString('utf8'))
}

/**
 * The part of a job token after its `glcbt-` (and instance prefix), as GitLab's decode strips
 * it before reading the JWT; null when `token` has no job token shape.
 */
export function jobTokenBody (token: string): string | null {
  if (markNearStart(token)) {
    const m = PREFIXED.exec(token)
    if (m !== null) return token.slice(m[0].length)
  }
  return token.startsWith(JOB_TOKEN_MARK) ? token.slice(JOB_TOKEN_MARK.length) : null
}

/** True when `prefix` is an instance prefix isJobTokenShape recognises tokens of. */
export function isRecognisedInstancePrefix (prefix: string): boolean {
  return PREFIX_CHARS.test(prefix)
}
