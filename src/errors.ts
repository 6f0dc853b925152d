// One table of every deny or failure the gate can answer with: a stable code (the log field,
// the metric label and the response `code`), an HTTP status and a public message.
// Messages never carry a token or an internal cause.

export interface ErrorDef {
  readonly status: number
  readonly message: string
}

export const errors = {
  // Job token scope decision and grants (src/policy/decide.ts, src/grants/). The 403 messages
  // naming projects are built per request by decide() with GitLab's wording; these are the
  // fallbacks. NO_POLICIES_FOR_ENDPOINT and JOB_TOKEN_SCOPE_PROJECT_ONLY are GitLab's own.
  NOT_ALLOWLISTED: { status: 403, message: '403 Forbidden - Authentication by CI/CD job token not allowed to this project.' },
  UNKNOWN_PROJECT: { status: 403, message: '403 Forbidden - Authentication by CI/CD job token not allowed to this project.' },
  NO_POLICIES_FOR_ENDPOINT: { status: 403, message: '403 Forbidden - This action is unauthorized for CI/CD job tokens.' },
  MISSING_POLICIES: { status: 403, message: '403 Forbidden - Insufficient permissions to access this resource.' },
  // job_token_scope: :project routes (the container registry repositories API), GitLab's wording.
  JOB_TOKEN_SCOPE_PROJECT_ONLY: { status: 403, message: "403 Forbidden - This project's CI/CD job token cannot be used to authenticate with the container registry of a different project." },
  GRANTS_STORE_UNAVAILABLE: { status: 503, message: '503 Service Unavailable - job token scopes cannot be checked right now; try again later' },
  // Redis lost what the gate wrote (src/grants/redis-marker.ts): nothing is decided on what is left.
  GRANTS_STORE_LOST: { status: 503, message: "503 Service Unavailable - job token scopes cannot be checked: the gate's settings store lost its data; an administrator must restore it" },
  GRANTS_INVALID: { status: 400, message: '400 Bad request - invalid job token scope settings' },
  GRANTS_VERSION_CONFLICT: { status: 409, message: '409 Conflict - job token scope settings were changed by someone else; reload and retry' },
  // The gate's request path (src/gate/) and forwarding (src/proxy/)
  ROUTE_NOT_FOR_JOB_TOKENS: { status: 403, message: '403 Forbidden - this endpoint does not accept CI/CD job tokens' },
  // A job token as Bearer, PRIVATE-TOKEN, access_token, bearer_token or private_token on a route
  // that takes none: GitLab's personal/OAuth token lookup raises (lib/gitlab/auth/auth_finders.rb).
  JOB_TOKEN_NOT_ACCEPTED: { status: 401, message: '401 Unauthorized' },
  JOB_TOKEN_IN_BODY: { status: 403, message: '403 Forbidden - this endpoint does not accept CI/CD job tokens, and the gate does not rewrite request bodies: send the request without the job token in its body' },
  NON_API_JOB_TOKEN: { status: 403, message: '403 Forbidden - CI/CD job tokens are not accepted outside the API here' },
  // A job token on a path holding /api/v4 under another root than the configured one: GitLab may
  // serve its API there (GATE_RELATIVE_URL_ROOT unset or wrong), where no route would be decided.
  // Also a package change and GraphQL there, whoever sends them (with their own message).
  API_PATH_OUTSIDE_ROOT: { status: 403, message: '403 Forbidden - this path is outside the API root the job token gate serves: a CI/CD job token is not accepted here' },
  // Finding the accessed project of group and instance routes (src/projects/): GitLab gave no
  // usable answer. Never an allow.
  PROJECT_LOOKUP_UNAVAILABLE: { status: 503, message: '503 Service Unavailable - the project this request touches cannot be looked up in GitLab right now; try again later' },
  PROJECT_LOOKUP_FAILED: { status: 502, message: '502 Bad Gateway - the project this request touches could not be looked up in GitLab' },
  // Too many lookups of npm package writes, of GitLab's npm metadata, or of Maven group package lists, at once (src/projects/finder.ts).
  PROJECT_LOOKUPS_BUSY: { status: 503, message: '503 Service Unavailable - the gate is looking up as many package projects as it may at once; try again later' },
  PROJECT_LOOKUP_UNVERIFIED: { status: 403, message: '403 Forbidden - GitLab showed the gate no project here, but the gate\'s service token may not see every project, so the gate cannot tell that nothing it guards is touched; GATE_SERVICE_TOKEN must belong to an administrator or auditor' },
  // A job outside an internal project's allowlist, whose user GitLab does not show the gate as external or not (src/projects/facts.ts).
  JOB_USER_UNVERIFIED: { status: 403, message: '403 Forbidden - GitLab did not show the gate whether this job\'s user is an external user, whom GitLab keeps out of internal projects, so a CI/CD job token from outside this internal project\'s allowlist is refused; GATE_SERVICE_TOKEN must belong to an administrator or auditor' },
  // npm instance and group routes: GitLab finds a project the gate cannot name for sure.
  PACKAGE_PROJECT_UNCERTAIN: { status: 403, message: '403 Forbidden - the gate cannot tell for sure which project GitLab would act on for this package, so CI/CD job tokens are refused here; use the project\'s own package endpoint (/projects/:id/packages/...)' },
  // npm's metadata of a name lists the versions of another project whose allowlist does not let the job in.
  PACKAGE_LISTED_PROJECT_NOT_ALLOWED: { status: 403, message: '403 Forbidden - the package metadata of this name lists packages of a project whose CI/CD job token allowlist does not let this job read them; read the package through its own project\'s endpoint (/projects/:id/packages/npm/...)' },
  // Conan's instance API acts on the project an `id` parameter names, whatever its package username.
  CONAN_PROJECT_PARAMETER: { status: 403, message: '403 Forbidden - GitLab\'s Conan instance API acts on the project an `id` parameter names, not on the package username\'s: send the request without `id`, or to that project\'s own Conan API (/projects/:id/packages/conan/v1/...)' },
  // Conan's instance search without a username lists packages of every project the job's user can read.
  CONAN_SEARCH_UNSCOPED: { status: 403, message: '403 Forbidden - a CI/CD job token\'s Conan search at the instance level must name the recipe\'s username (`name/version@group+project/channel`): without it GitLab searches every project the job\'s user can read, whose package rules the gate cannot check; or search the project\'s own Conan remote (/projects/:id/packages/conan/v1)' },
  // Some GitLab releases answer a project's Conan search for a full reference from the project its username names.
  CONAN_SEARCH_OTHER_PROJECT: { status: 403, message: '403 Forbidden - some GitLab releases answer a project\'s Conan search for a full reference (`name/version@username/channel`) from the project its username names, not from this one: a CI/CD job token\'s search here must name this project in the username (`group+project`) or none, and its `q` must be readable for sure (in the URL, once); search another project through its own remote (/projects/:id/packages/conan/v1) or the instance\'s' },
  // A full path longer than the gate looks up (src/grants/model.ts, namesProjectTooLong), which GitLab may route to a project.
  PROJECT_PATH_TOO_LONG: { status: 403, message: '403 Forbidden - the gate does not look up a project full path over 2048 characters, so it cannot tell which project GitLab would act on and check its rules; name the project by its id' },
  PROJECT_NOT_IN_URL: { status: 403, message: '403 Forbidden - the project this request touches cannot be told from its URL, and job tokens are not deferred to GitLab here' },
  UPSTREAM_UNAVAILABLE: { status: 502, message: '502 Bad Gateway - the GitLab API server could not be reached' },
  UPSTREAM_TIMEOUT: { status: 504, message: '504 Gateway Timeout - the GitLab API server did not answer in time' },
  FORWARD_AUTH_UNTRUSTED: { status: 403, message: '403 Forbidden - X-Original-*/X-Forwarded-* request headers are only accepted from trusted proxies' },
  // GATE_FORWARD_AUTH_ORIGINAL=headers and a check request that names no request to decide.
  FORWARD_AUTH_NO_ORIGINAL: { status: 403, message: '403 Forbidden - the check request names no original request (X-Original-URI, X-Original-URL or X-Forwarded-Uri), which GATE_FORWARD_AUTH_ORIGINAL=headers requires: the front proxy must set one' },
  // A method named by X-Original-Method or X-Forwarded-Method longer than any HTTP method (src/gate/forward-auth.ts).
  FORWARD_AUTH_METHOD_TOO_LONG: { status: 400, message: '400 Bad request - the original request method (X-Original-Method or X-Forwarded-Method) is longer than any HTTP method' },
  FORWARD_AUTH_GATE_ENDPOINT: { status: 403, message: '403 Forbidden - job token scope settings (the gate\'s configuration API, and GraphQL at /api/graphql and /api/glql) are answered by the gate itself: route these requests to the gate\'s API listener, not through forward-auth' },
  BODY_NOT_VISIBLE: { status: 403, message: '403 Forbidden - this request has a form, JSON or multipart body the gate cannot see, and a job token there would go unchecked; send such requests through the gate proxy, or have the front proxy pass bodies to the gate' },
  CONNECTION_DROPS_DECISION_HEADER: { status: 400, message: '400 Bad request - the Connection header names a header the authorization decision depends on (a credential, or the body\'s type, length or encoding); it would be dropped before GitLab reads the request' },
  GATE_SHUTTING_DOWN: { status: 503, message: '503 Service Unavailable - the gate is shutting down; retry' },
  GATE_INTERNAL_ERROR: { status: 500, message: '500 Internal Server Error' },
  // Requests Node's HTTP parser refuses (src/gate/server.ts): never decided, never forwarded.
  REQUEST_NOT_PARSEABLE: { status: 400, message: '400 Bad request - the request is not valid HTTP/1.1 (its framing, its request line or a header line), so it cannot be decided' },
  REQUEST_HEADERS_TOO_LARGE: { status: 431, message: '431 Request Header Fields Too Large' },
  REQUEST_HEADERS_TIMEOUT: { status: 408, message: '408 Request Timeout - the request headers did not arrive in time' },
  CONNECT_NOT_SUPPORTED: { status: 405, message: '405 Method Not Allowed - CONNECT: the gate is not a tunnelling proxy' },
  EXPECTATION_NOT_SUPPORTED: { status: 417, message: '417 Expectation Failed - the only Expect the gate takes is 100-continue' },
  // Canonical path (src/routing/canonical.ts)
  PATH_DOT_SEGMENT: { status: 400, message: '400 Bad request - path contains a dot segment' },
  PATH_CONTROL_CHAR: { status: 400, message: '400 Bad request - path contains a control character' },
  PATH_BACKSLASH: { status: 400, message: '400 Bad request - path contains a backslash' },
  PATH_BAD_ENCODING: { status: 400, message: '400 Bad request - path has invalid percent-encoding' },
  PATH_BAD_CHAR: { status: 400, message: '400 Bad request - path contains a character not allowed in a URI' },
  PATH_TOO_LONG: { status: 400, message: '400 Bad request - path is too long' },
  SEGMENT_TOO_LONG: { status: 400, message: '400 Bad request - path segment is too long' },
  PATH_NOT_ABSOLUTE: { status: 400, message: '400 Bad request - request target must be an absolute path' },
  // Credentials and job identity (src/identity/). Token failures answer GitLab's own
  // "401 Unauthorized"; the code names the reason. Never echo the token.
  CREDENTIAL_AMBIGUOUS: { status: 401, message: '401 Unauthorized - more than one credential in the request; send exactly one' },
  TOKEN_UNKNOWN: { status: 401, message: '401 Unauthorized' },
  TOKEN_MALFORMED: { status: 401, message: '401 Unauthorized' },
  TOKEN_TOO_LONG: { status: 401, message: '401 Unauthorized' },
  TOKEN_EXPIRED: { status: 401, message: '401 Unauthorized' },
  TOKEN_NOT_YET_VALID: { status: 401, message: '401 Unauthorized' },
  TOKEN_ALG_NOT_ALLOWED: { status: 401, message: '401 Unauthorized' },
  TOKEN_BAD_SIGNATURE: { status: 401, message: '401 Unauthorized' },
  TOKEN_WRONG_ISSUER: { status: 401, message: '401 Unauthorized' },
  TOKEN_WRONG_AUDIENCE: { status: 401, message: '401 Unauthorized' },
  TOKEN_CLAIMS_INVALID: { status: 401, message: '401 Unauthorized' },
  TOKEN_JOB_NOT_RUNNING: { status: 401, message: '401 Unauthorized' },
  IDENTITY_UPSTREAM_UNAVAILABLE: { status: 503, message: '503 Service Unavailable - the job token cannot be verified right now; try again later' },
  IDENTITY_LOOKUP_FAILED: { status: 502, message: '502 Bad Gateway - the job token could not be verified' },
  // Clients holding bodies half-sent take up the gate's body budget (GATE_BODY_BUDGET_BYTES, src/read-body.ts).
  BODY_BUDGET_EXHAUSTED: { status: 503, message: '503 Service Unavailable - the gate is holding as many request bodies as it may while their clients send them; try again later' },
  BODY_TOO_LARGE_TO_INSPECT: { status: 413, message: '413 Request Entity Too Large - the request body is too large to inspect for credentials' },
  BODY_NOT_PARSEABLE: { status: 400, message: '400 Bad request - the request body could not be parsed to inspect it for credentials' },
  BODY_ENCODING_NOT_INSPECTABLE: { status: 415, message: '415 Unsupported Media Type - an encoded (compressed) request body cannot be inspected for credentials' },
  MULTIPART_BAD_BOUNDARY: { status: 400, message: '400 Bad request - the multipart boundary is missing, repeated or invalid' },
  MULTIPART_HEADER_TOO_LARGE: { status: 400, message: '400 Bad request - a multipart part header is too large to inspect' },
  MULTIPART_HEADERS_TOO_LARGE: { status: 400, message: '400 Bad request - the parts of the multipart body hold more than 512 KiB of headers together, more than the gate inspects; send fewer or shorter part headers' },
  MULTIPART_TOO_MANY_PARTS: { status: 400, message: '400 Bad request - the multipart body has more than 4096 parts; GitLab reads no parameter of a body of 4096 or more' },
  MULTIPART_TRANSFER_ENCODING: { status: 400, message: '400 Bad request - a multipart part that can carry a credential or _method has a Content-Transfer-Encoding other than 7bit, 8bit or binary; send its value as it is, without one' },
  MULTIPART_PART_NAME_AMBIGUOUS: { status: 400, message: '400 Bad request - a multipart file part has a field name that Rails would read as another parameter once Workhorse writes the upload\'s fields again; send file parts under plain field names' },
  MULTIPART_CREDENTIAL_NOT_ALLOWED: { status: 401, message: '401 Unauthorized - a credential in a large multipart body cannot be checked; send it in a header (JOB-TOKEN, PRIVATE-TOKEN or Authorization)' },
  JSON_CREDENTIAL_NOT_ALLOWED: { status: 401, message: '401 Unauthorized - a credential in a JSON body the gate streams (one over the inspection limit, or one sent without a Content-Type) cannot be checked; send it in a header (JOB-TOKEN, PRIVATE-TOKEN or Authorization)' },
  JSON_TOO_DEEP: { status: 400, message: '400 Bad request - the JSON body is nested too deeply to inspect for credentials' },
  JSON_KEY_TOO_LONG: { status: 400, message: '400 Bad request - a top-level key of the JSON body is too long to inspect for credentials' },
  METHOD_OVERRIDE_AMBIGUOUS: { status: 400, message: '400 Bad request - the method this request is routed as (X-HTTP-Method-Override, _method) is repeated or could be read differently; send it once, or as the request method' },
  METHOD_OVERRIDE_NOT_INSPECTABLE: { status: 400, message: '400 Bad request - a _method parameter in a large multipart body cannot be checked before the request is forwarded; send the request with its real method' },
  // GitLab's GraphQL upload middleware (ApolloUploadServer::Middleware) runs on every multipart
  // request to Rails and writes the members of an `operations` parameter over its parameters.
  UPLOAD_OPERATIONS_PARAMETER: { status: 400, message: '400 Bad request - GitLab writes the members of an `operations` parameter over the parameters of a multipart request, credentials included, and the gate reads them in GraphQL requests only; send this request without an `operations` parameter (and without `multipart/form-data` in a Content-Type that is not multipart)' },
  // Configuration API (src/admin/) and per package format rules (src/policy/package-check.ts).
  // The package-rule 403 messages are built per request, naming the format and the setting.
  PACKAGE_READ_DISABLED: { status: 403, message: '403 Forbidden - CI/CD job tokens may not read this package format in this project' },
  // The web UI's model delete with no relative URL root configured (src/routing/package-fallback.ts).
  WEB_MODEL_DELETE_TOO_DEEP: { status: 403, message: '403 Forbidden - with no relative URL root configured, the gate checks a model delete of GitLab\'s web UI against every project its path may name after a root GitLab may have, and this path may name more than it checks; delete the model through GitLab\'s API (GraphQL mlModelDestroy), or set GATE_RELATIVE_URL_ROOT to the root GitLab runs under' },
  PACKAGE_MAINTAINER_ONLY: { status: 403, message: '403 Forbidden - only users with the Maintainer role or higher may change this package format in this project' },
  ADMIN_UNAUTHENTICATED: { status: 401, message: '401 Unauthorized' },
  ADMIN_FORBIDDEN: { status: 403, message: '403 Forbidden - changing job token permissions needs the Maintainer role or higher' },
  ADMIN_JOB_TOKEN_REFUSED: { status: 403, message: '403 Forbidden - CI/CD job tokens cannot read or change job token permissions' },
  ADMIN_PROJECT_NOT_FOUND: { status: 404, message: '404 Project Not Found' },
  ADMIN_NOT_FOUND: { status: 404, message: '404 Not Found' },
  ADMIN_METHOD_NOT_ALLOWED: { status: 405, message: '405 Method Not Allowed' },
  ADMIN_BAD_REQUEST: { status: 400, message: '400 Bad request - the request body must be a JSON object' },
  ADMIN_VALIDATION_FAILED: { status: 400, message: '400 Bad request - invalid job token permissions; see errors' },
  ADMIN_ENTRY_EXISTS: { status: 400, message: '400 Bad request - the target is already in the job token scope allowlist' },
  ADMIN_INBOUND_SCOPE_ENFORCED: { status: 400, message: '400 Bad request - Job token scope cannot be disabled for this project because it is enforced for the instance.' },
  ADMIN_BODY_TOO_LARGE: { status: 413, message: '413 Request Entity Too Large - the request body is too large' },
  ADMIN_UPSTREAM_UNAVAILABLE: { status: 502, message: '502 Bad Gateway - the caller\'s role could not be checked with GitLab' },
  // A change by a user GitLab does not name (GET /api/v4/user refused the token, a fine-grained
  // one without a permission to read its user, or did not answer): every change is audited with
  // its author, so none is made (src/admin/service.ts).
  ADMIN_ACTOR_UNKNOWN: { status: 403, message: '403 Forbidden - GitLab does not say which user holds this token (GET /api/v4/user), and every change to job token permissions is audited with its author; use a token that may read its own user, or try again' },
  // A fine-grained personal access token without the endpoint's permission at the project
  // (src/admin/rest.ts); the answer's message is GitLab's sentence naming the permission.
  ADMIN_TOKEN_PERMISSION_MISSING: { status: 403, message: '403 Forbidden - Access denied: This operation requires a fine-grained personal access token with a permission this token does not have' },
  // A legacy personal access token or OAuth token without a scope GitLab's API would want (writes:
  // api; reads: api or read_api), or a write by a token whose scopes GitLab did not show
  // (src/admin/token-scope.ts). Answered with GitLab's insufficient_scope fields.
  ADMIN_TOKEN_SCOPE_INSUFFICIENT: { status: 403, message: '403 Forbidden - insufficient_scope: this request needs an access token with the api scope' },
  ROLE_CHECK_UNAVAILABLE: { status: 503, message: '503 Service Unavailable - the caller\'s role cannot be checked with GitLab right now; try again later' },
  // Enforcement of fine-grained personal access tokens at /api/graphql (src/graphql/enforce.ts).
  // Refusals of a document are answered in GraphQL's shape (HTTP 200, `errors[].extensions.code`);
  // the status here is what the code means, used where the answer is not GraphQL's.
  GRAPHQL_PERMISSION_MISSING: { status: 403, message: 'The access token does not have the permission this GraphQL operation requires' },
  GRAPHQL_NOT_IN_CATALOG: { status: 403, message: 'This GraphQL field, type or mutation is not available to fine-grained personal access tokens' },
  GRAPHQL_BATCH_NOT_RUN: { status: 403, message: 'Not run: another operation in this batch was refused' },
  GRAPHQL_OPERATION_NOT_FOUND: { status: 400, message: 'The operation named by operationName is not in the GraphQL document' },
  // A mutation's clientMutationId, which its payload echoes, over the length the gate echoes (src/admin/graphql.ts).
  GRAPHQL_CLIENT_MUTATION_ID_TOO_LONG: { status: 400, message: 'clientMutationId is longer than the gate echoes (255 characters); send a shorter one' },
  GRAPHQL_VARIABLES_INVALID: { status: 400, message: 'GraphQL variables must be a JSON object (or a string holding one)' },
  GRAPHQL_FINE_GRAINED_BODY_TOO_LARGE: { status: 413, message: '413 Request Entity Too Large - a GraphQL request with a fine-grained personal access token is decided before it is forwarded, so its body may be at most 1 MiB (uploads: a multipart body whose operations part comes first)' },
  GRAPHQL_LATE_PARAMETER: { status: 400, message: '400 Bad request - a part of this large GraphQL multipart body, after the part the decision was made from, is one GitLab would read as a GraphQL parameter or a credential' },
  GRAPHQL_MIXED_OPERATION: { status: 400, message: '400 Bad request - this GraphQL request mixes the gate\'s fields (jobTokenPermissions, updateJobTokenPermissions) with GitLab fields; send them as separate requests' },
  GRAPHQL_ALLOWLIST_MANAGED_BY_GATE: { status: 400, message: '400 Bad request - this GraphQL mutation would change GitLab\'s job token allowlist or scope, which the gate manages; use the gate\'s REST endpoints under /api/v4/projects/:id/job_token_scope' },
  GRAPHQL_GATE_FIELDS_OVER_GET: { status: 400, message: '400 Bad request - job token allowlist mutations and the gate\'s GraphQL fields are accepted only in POST requests' },
  GRAPHQL_AMBIGUOUS_REQUEST: { status: 400, message: '400 Bad request - this GraphQL request can be read in more than one way; send query, variables and operationName once, in a JSON body' },
  GRAPHQL_TOO_COMPLEX: { status: 400, message: '400 Bad request - this GraphQL request selects more of the gate\'s fields than GitLab runs in one query; send them in smaller requests' },
  GRAPHQL_NOT_INSPECTABLE: { status: 400, message: '400 Bad request - this GraphQL request names job token allowlist fields but the gate cannot parse it' },
  // A GraphQL request deleting more packages by ID than the gate looks up for one request
  // (src/admin/package-deletes.ts): each is one call to GitLab.
  GRAPHQL_TOO_MANY_PACKAGES: { status: 400, message: '400 Bad request - this GraphQL request deletes more packages by ID than the gate looks up in one request; send fewer in each' },
  // A GraphQL request whose package mutations (model registry writes, package file deletes) name
  // more project paths than the gate checks for one request (src/admin/model-registry.ts): each
  // may cost calls to GitLab, a path GitLab shows nothing at as many as a real one.
  GRAPHQL_TOO_MANY_PROJECTS: { status: 400, message: '400 Bad request - this GraphQL request\'s package mutations name more projects than the gate checks in one request; send fewer in each' },
  GRAPHQL_BODY_TOO_LARGE: { status: 413, message: '413 Request Entity Too Large - this GraphQL request is over 1 MiB and names job token allowlist fields; the gate answers those only in requests of at most 1 MiB' },
  // GraphQL documents the gate reads (src/graphql/documents.ts): over a limit, or not a document.
  // The answer names the limit and its setting; GitLab refuses such documents too.
  GRAPHQL_DOCUMENT_TOO_LARGE: { status: 400, message: '400 Bad request - the GraphQL document is larger than the gate reads' },
  GRAPHQL_DOCUMENT_TOO_DEEP: { status: 400, message: '400 Bad request - the GraphQL document is nested deeper than the gate reads' },
  GRAPHQL_DOCUMENT_INVALID: { status: 400, message: '400 Bad request - the GraphQL document is not valid' },
  // GitLab's parser would read the document otherwise than the gate: refused, not guessed at.
  GRAPHQL_DOCUMENT_AMBIGUOUS: { status: 400, message: '400 Bad request - GitLab would read this GraphQL document differently than the gate' },
  // Fine-grained personal access tokens on GraphQL (src/graphql/token-scopes.ts,
  // permission-check.ts): what the token may do could not be read from GitLab. Never an allow.
  GRAPHQL_TOKEN_LOOKUP_UNAVAILABLE: { status: 503, message: '503 Service Unavailable - the permissions of this access token cannot be read from GitLab right now; try again later' },
  GRAPHQL_TOKEN_LOOKUP_INVALID: { status: 502, message: '502 Bad Gateway - GitLab answered something the gate cannot read about the permissions of this access token' },
  GRAPHQL_TARGET_LOOKUP_UNAVAILABLE: { status: 503, message: '503 Service Unavailable - the project or group this GraphQL request touches cannot be looked up in GitLab right now; try again later' },
  GRAPHQL_TARGET_LOOKUP_FAILED: { status: 502, message: '502 Bad Gateway - the project or group this GraphQL request touches could not be looked up in GitLab' },
  GRAPHQL_TOKEN_REGISTRY_OPERATOR_ONLY: { status: 403, message: '403 Forbidden - only the gate\'s operator token may read or change registered fine-grained token permissions' },
  // GitLab knows the token but will not describe it to the gate (403 to personal_access_tokens/self,
  // or a fine-grained record without its scopes), and no registration names it: refused.
  GRAPHQL_TOKEN_SCOPES_HIDDEN: { status: 403, message: '403 Forbidden - GitLab will not describe this access token\'s permissions to the gate, so what it may do cannot be checked: grant the token Personal Access Token: Read (User), or have the gate\'s operator register the token\'s SHA-256 with its permissions' },
  GRAPHQL_TOKEN_REGISTRY_READ_ONLY: { status: 403, message: '403 Forbidden - the gate reads its fine-grained token registry from a read-only file (GATE_GRAPHQL_TOKEN_REGISTRY_FILE), the copy every replica shares: change registrations in that file (its Secret) and restart the gate' },
  GRAPHQL_TOKEN_REGISTRY_WRITE_FAILED: { status: 500, message: '500 Internal Server Error - the registration could not be saved to the gate\'s token registry file; nothing was changed' },
  // Another process (another gate on the same file) wrote the registry file: this gate's copy is no
  // longer what the file says, so it answers no registration and changes nothing until restarted.
  GRAPHQL_TOKEN_REGISTRY_CHANGED: { status: 409, message: '409 Conflict - the gate\'s token registry file (GATE_GRAPHQL_TOKEN_REGISTRY_FILE) was written by another process: restart this gate to read it, and never share a writable registry file between replicas' },
} as const satisfies Record<string, ErrorDef>

export type ErrorCode = keyof typeof errors

/** Why src/policy/decide.ts allows: its verdicts, listed here with every other reason. */
export type AllowReason =
  | 'SELF_ACCESS'
  | 'INBOUND_DISABLED'
  /** Unknown accessed project with `unknownProject: 'allow'`: GitLab decides. */
  | 'UNKNOWN_PROJECT_ALLOWED'
  | 'DEFAULT_PERMISSIONS'
  /** A fine-grained entry acting as default permissions: fine-grained policies are off (older GitLab). */
  | 'FINE_GRAINED_POLICIES_OFF'
  | 'SKIP_POLICIES'
  | 'POLICIES_GRANTED'
  /** A public or internal project whose features the route lists are all enabled (publicly_accessible_feature?). */
  | 'PUBLIC_PROJECT_FEATURES'
  /** A public or internal project's feature read ProjectPolicy gives job tokens from outside the allowlist. */
  | 'PUBLIC_PROJECT_READ'

/** Reasons the gate's request path gives itself, beside the errors table and decide()'s allow reasons. */
// NO_PROJECT: a group or instance route whose lookup found no project: nothing the gate guards
// exists there, so GitLab answers (404, or npm's forward to the public registry).
// JOB_TOKEN_STRIPPED: a job token on a route that takes none, removed from the headers and the
// query: forwarded anonymously, as GitLab runs it.
// RUNNER_JOB_ROUTE: GitLab Runner's own job routes (src/routing/runner-routes.ts), where GitLab
// checks the job token against the job in the URL: forwarded as sent.
export const GATE_REASONS = ['ALLOWED', 'NO_JOB_TOKEN', 'NON_API_PATH', 'CLIENT_ABORTED', 'NO_PROJECT', 'JOB_TOKEN_STRIPPED', 'RUNNER_JOB_ROUTE'] as const
export type GateReason = typeof GATE_REASONS[number]

/**
 * Every reason a decided request can carry: the decision log's `reason`, the metrics' `reason`
 * label and, for denies, the response `code`. A reason outside this union does not compile.
 */
export type Reason = ErrorCode | AllowReason | GateReason

/** A problem with one field of a request or document: `path` names it (`''` for the whole). */
export interface FieldIssue {
  readonly path: string
  readonly message: string
}

export interface GateErrorOptions extends ErrorOptions {
  /**
   * What the answer says, when `message` is a detail for logs only (an internal cause, a file
   * name, an upstream status). Default: `message` when given, else the table's message.
   */
  readonly publicMessage?: string
  /** Field problems, answered as `errors: [{field, message}]`. */
  readonly issues?: readonly FieldIssue[]
  /** Extra response headers (`Allow` of a 405). */
  readonly headers?: Readonly<Record<string, string>>
}

/**
 * Most entries an answer's field problems hold: past them, the first 99 and one more naming how
 * many were left out, so a list already cut (a store's refusal answered as the API's) is within
 * the bound and kept as it is. Validation names every problem of a request, and a 1 MiB body
 * holds a hundred thousand and more (unknown package formats, unknown fields): listed, one
 * Maintainer's request was answered with up to 35 MB, which the gate held for as long as its
 * client did not read it.
 */
export const MAX_LISTED_ISSUES = 100

function listed (issues: readonly FieldIssue[]): readonly FieldIssue[] {
  if (issues.length <= MAX_LISTED_ISSUES) return issues
  const shown = MAX_LISTED_ISSUES - 1
  return [...issues.slice(0, shown), { path: '', message: `and ${issues.length - shown} more problems, not listed` }]
}

/**
 * The one error type of the gate: a failure answered with a code of the table, whose status
 * always comes from there (no code path picks its own). Its answer's message is `publicMessage`:
 * the table's unless one is given for the answer. `message` is what logs show. The grants
 * (GrantsError), identity (IdentityError) and configuration API (AdminError) failures are its
 * subclasses. Throw it where a deny cannot be returned; src/gate/respond.ts writes it.
 */
export class GateError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly publicMessage: string
  readonly issues: readonly FieldIssue[]
  readonly headers: Readonly<Record<string, string>>
  constructor (code: ErrorCode, message: string = errors[code].message, options?: GateErrorOptions) {
    super(message, options)
    this.name = 'GateError'
    this.code = code
    this.status = errors[code].status
    this.publicMessage = options?.publicMessage ?? message
    this.issues = listed(options?.issues ?? [])
    this.headers = options?.headers ?? {}
  }
}

/** The JSON body GitLab's API answers with, plus the gate's stable code. */
export function errorBody (code: ErrorCode, message: string = errors[code].message): { message: string, code: ErrorCode } {
  return { message, code }
}
