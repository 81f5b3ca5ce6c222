// Google side of the loopback emulator: STS token exchange (and downscoping with a Credential Access
// Boundary), IAM Credentials impersonation, just enough BigQuery for the real @google-cloud/bigquery
// client to run a query, and Cloud Storage object metadata that honours access boundaries.
//
// Routes and wire formats:
//   [sts]      POST /v1/token, application/x-www-form-urlencoded:
//                grant_type=urn:ietf:params:oauth:grant-type:token-exchange
//                requested_token_type=urn:ietf:params:oauth:token-type:access_token
//                subject_token_type=urn:ietf:params:aws:token-type:aws4_request
//                audience=<em.config.audience>  scope=<space-separated>  subject_token=<see sigv4-oracle.mjs>
//              200 {"access_token":"ya29.sts.…","issued_token_type":"urn:ietf:params:oauth:token-type:access_token",
//                   "token_type":"Bearer","expires_in":3600}
//              400 {"error":"invalid_request"|"invalid_target"|"invalid_grant","error_description":…}
//              Every request's log entry gets `verdict` {ok, reason, message, signedHeaders, accessKeyId}.
//            Downscoping (google-auth-library's DownscopedClient; Credential Access Boundaries):
//                grant_type=urn:ietf:params:oauth:grant-type:token-exchange
//                requested_token_type=urn:ietf:params:oauth:token-type:access_token
//                subject_token_type=urn:ietf:params:oauth:token-type:access_token
//                subject_token=<a live Google access token the emulator issued>
//                options=<URL-encoded JSON {"accessBoundary":{"accessBoundaryRules":[{"availableResource",
//                  "availablePermissions":["inRole:…",…],"availabilityCondition"?:{"expression",…}}, …1-10]}}>
//              200 as above, for a token of kind 'downscoped' with the source's principal, scopes and
//                  expiry (expires_in: the source token's remaining lifetime) and the boundary;
//                  400 invalid_request (no or malformed options), invalid_grant (unknown or expired
//                  subject token). The log entry gets `verdict` {ok, reason: 'downscoped'|…, principal}
//                  and `accessBoundary` (the parsed options).
//   [iam]      POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken
//              Authorization: Bearer <STS token>, JSON {"scope":[…],"lifetime":"3600s"}
//              200 {"accessToken":"ya29.sa.…","expireTime":"YYYY-MM-DDTHH:MM:SSZ"}
//              401 UNAUTHENTICATED (unknown bearer), 403 PERMISSION_DENIED (other email), 400 INVALID_ARGUMENT
//   [iamIdToken] POST /v1/projects/-/serviceAccounts/<email>:generateIdToken
//              Authorization: Bearer <STS token>, JSON {"audience":"…","includeEmail":bool}
//              200 {"token":"<JWT, HS256 with em.idTokenKey>"}: claims iss, aud, azp, sub, iat, exp (iat + 3600), jti,
//                  plus email and email_verified when includeEmail. 401 / 403 / 400 as [iam].
//   [iamSignBlob] POST /v1/projects/-/serviceAccounts/<email>:signBlob, Authorization: Bearer <the
//              service account's own token (kind 'sa'), or an STS token>, JSON {"payload": base64}
//              200 {"keyId":"emulator-key","signedBlob": base64(HMAC-SHA256(em.idTokenKey, payload bytes))}
//   [cloudRun] GET|POST /run/<service>[/…]: a stand-in Cloud Run service whose URL is
//              http://<Host header>/run/<service>. It accepts only `Authorization: Bearer <ID token>`
//              with a valid emulator signature, an unexpired exp, aud equal to that URL, and not in
//              em.revokedIdTokens; else 401. 200 {"service","aud","email","method","path"}.
//   [storage]  GET /storage/v1/b/<bucket>/o/<object, URL-encoded>: Cloud Storage objects.get (metadata),
//              Authorization: Bearer <any emulator token with cloud-platform or a devstorage scope>.
//              A 'downscoped' token only within its boundary: a rule whose availableResource is
//              //storage.googleapis.com/projects/_/buckets/<bucket>, with a role that can read
//              objects (inRole:roles/storage.objectViewer, objectUser, objectAdmin, admin,
//              legacyObjectReader), and whose availabilityCondition, if any, holds; the emulator
//              evaluates only resource.name.startsWith('<literal>') (another expression: 500).
//              200 {"kind":"storage#object","bucket","name","generation","contentType","size"};
//              401 (no or unknown bearer), 403 (outside the boundary, or no storage scope).
//              The log entry gets `storage` {bucket, object, kind, principal}.
//   [bigquery] BigQuery REST v2 under /bigquery/v2/projects/<p>/ (Authorization: Bearer <STS or IAM token>):
//              POST queries            jobs.query (the client's fast path)
//              POST jobs               jobs.insert (used when the fast path is not possible)
//              GET  queries/<jobId>    jobs.getQueryResults
//              GET  jobs/<jobId>       jobs.get
//              Every query returns one row: greeting STRING, principal STRING, n INTEGER (42).

import { verifySubjectToken } from './sigv4-oracle.mjs'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { bearerToken, json, parseJson, randomToken, rfc3339 } from './wire.mjs'

export const GREETING = 'hello from the aws-wif-supplier emulator'

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const AWS_SUBJECT_TOKEN_TYPE = 'urn:ietf:params:aws:token-type:aws4_request'
const STS_TOKEN_TTL_SECONDS = 3600
const MAX_LIFETIME_SECONDS = 43200
const BIGQUERY_SCOPES = ['https://www.googleapis.com/auth/cloud-platform', 'https://www.googleapis.com/auth/bigquery']
const WORKLOAD_AUDIENCE = /^\/\/iam\.googleapis\.com\/projects\/([^/]+)\/locations\/global\/workloadIdentityPools\/([^/]+)\/providers\/[^/]+$/

/** A Google API error body: {"error":{"code","message","status"}}. */
function googleError(code, status, message) {
  return json(code, { error: { code, message, status } })
}

const UNAUTHENTICATED = () => googleError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.')

/** Record a Google access token so IAM and BigQuery accept it. */
function issueGoogleToken(em, { kind, principal, scopes, lifetimeSeconds }) {
  const token = `ya29.${kind}.${randomToken(48)}`
  const expiresAt = em.now() + lifetimeSeconds * 1000
  em.googleTokens.set(token, { kind, principal, scopes, expiresAt })
  return { token, expiresAt }
}

/** The caller's token record, or undefined when the bearer is missing, unknown or expired. */
function callerToken(ctx) {
  const record = ctx.em.googleTokens.get(bearerToken(ctx.headers))
  return record && ctx.em.now() < record.expiresAt ? record : undefined
}

/** The federated principal Google derives from an AWS caller ARN. */
function federatedPrincipal(audience, arn) {
  const m = WORKLOAD_AUDIENCE.exec(audience)
  const pool = m ? `projects/${m[1]}/locations/global/workloadIdentityPools/${m[2]}` : 'workloadIdentityPools/unknown'
  return `principal://iam.googleapis.com/${pool}/subject/${arn}`
}

// ---------------------------------------------------------------------------------------------
// [sts] token exchange

function stsError(error, reason, description, extra = {}) {
  return { verdict: { ...extra, ok: false, reason, message: description }, reply: json(400, { error, error_description: description }) }
}

/** Check the form parameters other than the subject token; returns an error outcome or null. */
function checkExchangeParams(em, form) {
  if (form.get('grant_type') !== TOKEN_EXCHANGE) return stsError('invalid_request', 'bad-grant-type', `Invalid value for "grant_type": ${form.get('grant_type')}`)
  if (form.get('requested_token_type') !== ACCESS_TOKEN_TYPE) return stsError('invalid_request', 'bad-requested-token-type', `Invalid value for "requested_token_type": ${form.get('requested_token_type')}`)
  if (form.get('subject_token_type') !== AWS_SUBJECT_TOKEN_TYPE) return stsError('invalid_request', 'bad-subject-token-type', `Invalid value for "subject_token_type": ${form.get('subject_token_type')}`)
  if (!form.get('scope')) return stsError('invalid_request', 'missing-scope', 'The "scope" parameter is required.')
  if (!form.get('subject_token')) return stsError('invalid_request', 'missing-subject-token', 'The "subject_token" parameter is required.')
  if (form.get('audience') !== em.config.audience) {
    return stsError('invalid_target', 'audience-mismatch', 'The target service indicated by the "audience" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn\'t exist.')
  }
  return null
}

function describeRejection(verdict) {
  if (!verdict.awsCode) return `Invalid AWS subject token: ${verdict.message}`
  return `Unable to verify the AWS response. Received invalid AWS response of type ${verdict.awsCode} with error message: ${verdict.message}`
}

async function exchange(em, form) {
  if (form.get('subject_token_type') === ACCESS_TOKEN_TYPE) return downscope(em, form)
  const paramError = checkExchangeParams(em, form)
  if (paramError) return paramError
  const verdict = await verifySubjectToken(form.get('subject_token'), {
    audience: em.config.audience,
    lookupKey: (akid) => em.issued.get(akid),
    nowMs: em.now(),
  })
  if (!verdict.ok) return stsError('invalid_grant', verdict.reason, describeRejection(verdict), verdict)
  // The attribute condition: callers' ARNs (as GetCallerIdentity reports them) must start with a listed prefix.
  const allowed = em.config.allowedPrincipals
  if (allowed && !allowed.some((prefix) => verdict.arn.startsWith(prefix))) {
    return stsError('invalid_grant', 'principal-not-allowed', 'The given credential is rejected by the attribute condition.', verdict)
  }
  const principal = federatedPrincipal(em.config.audience, verdict.arn)
  const scopes = form.get('scope').split(/\s+/)
  const lifetimeSeconds = em.config.stsTokenTtlSeconds ?? STS_TOKEN_TTL_SECONDS
  const { token } = issueGoogleToken(em, { kind: 'sts', principal, scopes, lifetimeSeconds })
  return {
    verdict: { ...verdict, principal },
    reply: json(200, { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: lifetimeSeconds }),
  }
}

async function tokenExchange(ctx) {
  const { verdict, reply, accessBoundary } = await exchange(ctx.em, new URLSearchParams(ctx.body))
  ctx.entry.verdict = verdict
  if (accessBoundary) ctx.entry.accessBoundary = accessBoundary
  return reply
}

const MAX_ACCESS_BOUNDARY_RULES = 10

/** The access boundary in a downscoping request's `options`, or null when it is not a valid one. */
function parseAccessBoundary(options) {
  let parsed
  try {
    parsed = JSON.parse(options)
  } catch {
    return null
  }
  const rules = parsed?.accessBoundary?.accessBoundaryRules
  if (!Array.isArray(rules) || rules.length === 0 || rules.length > MAX_ACCESS_BOUNDARY_RULES) return null
  const valid = rules.every(
    (r) =>
      typeof r?.availableResource === 'string' &&
      Array.isArray(r.availablePermissions) &&
      r.availablePermissions.length > 0 &&
      r.availablePermissions.every((p) => typeof p === 'string' && p.startsWith('inRole:')) &&
      (r.availabilityCondition === undefined || typeof r.availabilityCondition?.expression === 'string'),
  )
  return valid ? parsed.accessBoundary : null
}

/** Exchange a Google access token for one limited by a Credential Access Boundary. */
function downscope(em, form) {
  if (form.get('grant_type') !== TOKEN_EXCHANGE) return stsError('invalid_request', 'bad-grant-type', `Invalid value for "grant_type": ${form.get('grant_type')}`)
  if (form.get('requested_token_type') !== ACCESS_TOKEN_TYPE) return stsError('invalid_request', 'bad-requested-token-type', `Invalid value for "requested_token_type": ${form.get('requested_token_type')}`)
  const accessBoundary = form.get('options') ? parseAccessBoundary(form.get('options')) : null
  if (!accessBoundary) return stsError('invalid_request', 'bad-access-boundary', 'The "options" parameter must hold a valid access boundary with 1 to 10 rules.')
  const source = em.googleTokens.get(form.get('subject_token'))
  if (!source || !(em.now() < source.expiresAt)) {
    return stsError('invalid_grant', 'bad-subject-token', 'The subject token is invalid or expired.')
  }
  const lifetimeSeconds = Math.floor((source.expiresAt - em.now()) / 1000)
  const token = `ya29.downscoped.${randomToken(48)}`
  em.googleTokens.set(token, { kind: 'downscoped', principal: source.principal, scopes: source.scopes, expiresAt: source.expiresAt, accessBoundary })
  return {
    verdict: { ok: true, reason: 'downscoped', principal: source.principal },
    accessBoundary,
    reply: json(200, { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: lifetimeSeconds }),
  }
}

// ---------------------------------------------------------------------------------------------
// [iam] generateAccessToken

function parseLifetime(value = '3600s') {
  const m = /^(\d+)(?:\.\d+)?s$/.exec(value)
  return m ? Number(m[1]) : NaN
}

function generateAccessToken(ctx) {
  const { em } = ctx
  const caller = callerToken(ctx)
  if (!caller || caller.kind !== 'sts') return UNAUTHENTICATED()
  const email = decodeURIComponent(ctx.params[0])
  if (email !== em.config.serviceAccount) {
    return googleError(403, 'PERMISSION_DENIED', "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).")
  }
  const body = parseJson(ctx.body)
  const lifetimeSeconds = parseLifetime(body?.lifetime)
  if (!Array.isArray(body?.scope) || body.scope.length === 0) return googleError(400, 'INVALID_ARGUMENT', 'Scope required.')
  if (!(lifetimeSeconds >= 1 && lifetimeSeconds <= MAX_LIFETIME_SECONDS)) {
    return googleError(400, 'INVALID_ARGUMENT', `The lifetime ${body.lifetime} must be between 1s and ${MAX_LIFETIME_SECONDS}s.`)
  }
  ctx.entry.impersonatedBy = caller.principal
  const { token, expiresAt } = issueGoogleToken(em, { kind: 'sa', principal: email, scopes: body.scope, lifetimeSeconds })
  // protobuf's JSON Timestamp: whole seconds, or with the milliseconds when configured.
  return json(200, { accessToken: token, expireTime: em.config.expireTimeMillis ? new Date(expiresAt).toISOString() : rfc3339(expiresAt) })
}

// ---------------------------------------------------------------------------------------------
// [iamIdToken] generateIdToken and the [cloudRun] stand-in

const ID_TOKEN_TTL_SECONDS = 3600
const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

function signJwt(key, claims) {
  const unsigned = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`
  return `${unsigned}.${createHmac('sha256', key).update(unsigned).digest('base64url')}`
}

/** The claims of a JWT signed with `key`, or null when it is not one. */
export function verifyJwt(key, token) {
  const parts = String(token ?? '').split('.')
  if (parts.length !== 3) return null
  const expected = createHmac('sha256', key).update(`${parts[0]}.${parts[1]}`).digest()
  const given = Buffer.from(parts[2], 'base64url')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null
  try {
    return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'))
  } catch {
    return null
  }
}

function generateIdToken(ctx) {
  const { em } = ctx
  const caller = callerToken(ctx)
  if (!caller || caller.kind !== 'sts') return UNAUTHENTICATED()
  const email = decodeURIComponent(ctx.params[0])
  if (email !== em.config.serviceAccount) {
    return googleError(403, 'PERMISSION_DENIED', "Permission 'iam.serviceAccounts.getOpenIdToken' denied on resource (or it may not exist).")
  }
  const body = parseJson(ctx.body)
  if (typeof body?.audience !== 'string' || body.audience === '') return googleError(400, 'INVALID_ARGUMENT', 'audience is required.')
  const iat = Math.floor(em.now() / 1000)
  const claims = { iss: 'https://accounts.google.com', aud: body.audience, azp: '100000000000000000001', sub: '100000000000000000001', iat, exp: iat + ID_TOKEN_TTL_SECONDS, jti: randomToken(12) }
  if (body.includeEmail === true) Object.assign(claims, { email, email_verified: true })
  const token = signJwt(em.idTokenKey, claims)
  em.idTokens.set(token, claims)
  ctx.entry.impersonatedBy = caller.principal
  ctx.entry.idTokenRequest = body
  return json(200, { token })
}

/** What the emulator's signBlob answers for `payload` (bytes): base64 HMAC-SHA256 under em.idTokenKey. */
export function emulatorSignature(em, payload) {
  return createHmac('sha256', em.idTokenKey).update(payload).digest('base64')
}

function signBlob(ctx) {
  const { em } = ctx
  const caller = callerToken(ctx)
  const email = decodeURIComponent(ctx.params[0])
  if (!caller || !(caller.kind === 'sts' || (caller.kind === 'sa' && caller.principal === email))) return UNAUTHENTICATED()
  if (email !== em.config.serviceAccount) {
    return googleError(403, 'PERMISSION_DENIED', "Permission 'iam.serviceAccounts.signBlob' denied on resource (or it may not exist).")
  }
  const body = parseJson(ctx.body)
  if (typeof body?.payload !== 'string') return googleError(400, 'INVALID_ARGUMENT', 'payload is required.')
  ctx.entry.signedBy = caller.kind
  return json(200, { keyId: 'emulator-key', signedBlob: emulatorSignature(em, Buffer.from(body.payload, 'base64')) })
}

function cloudRun(ctx) {
  const { em } = ctx
  const url = `http://${ctx.headers.host}/run/${ctx.params[0]}`
  const token = bearerToken(ctx.headers)
  const claims = verifyJwt(em.idTokenKey, token)
  const reject = (why) => {
    ctx.entry.rejected = why
    return json(401, { error: 'unauthorized', reason: why }, { 'www-authenticate': 'Bearer error="invalid_token"' })
  }
  if (!claims) return reject(token ? 'not an ID token signed by the emulator' : 'no bearer token')
  if (em.revokedIdTokens.has(token)) return reject('revoked')
  if (!(claims.exp * 1000 > em.now())) return reject('expired')
  if (claims.aud !== url) return reject(`aud ${claims.aud} is not ${url}`)
  ctx.entry.idToken = claims
  return json(200, { service: ctx.params[0], aud: claims.aud, email: claims.email ?? null, method: ctx.req.method, path: ctx.url.pathname })
}

// ---------------------------------------------------------------------------------------------
// [storage] objects.get, within access boundaries

const STORAGE_SCOPES = ['https://www.googleapis.com/auth/cloud-platform', 'https://www.googleapis.com/auth/cloud-platform.read-only', 'https://www.googleapis.com/auth/devstorage.read_only', 'https://www.googleapis.com/auth/devstorage.read_write', 'https://www.googleapis.com/auth/devstorage.full_control']
const OBJECT_READERS = ['objectViewer', 'objectUser', 'objectAdmin', 'admin', 'legacyObjectReader'].map((r) => `inRole:roles/storage.${r}`)
const STARTS_WITH = /^\s*resource\.name\.startsWith\(\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*\)\s*$/

/** Whether an access boundary lets its token read the object; throws on a condition the emulator cannot evaluate. */
function boundaryAllows(boundary, bucket, object) {
  const resource = `//storage.googleapis.com/projects/_/buckets/${bucket}`
  const name = `projects/_/buckets/${bucket}/objects/${object}`
  return boundary.accessBoundaryRules.some((rule) => {
    if (rule.availableResource !== resource || !rule.availablePermissions.some((p) => OBJECT_READERS.includes(p))) return false
    if (rule.availabilityCondition === undefined) return true
    const m = STARTS_WITH.exec(rule.availabilityCondition.expression)
    if (!m) throw new Error(`the emulator evaluates only resource.name.startsWith('…') conditions, not ${rule.availabilityCondition.expression}`)
    return name.startsWith(m[1] ?? m[2])
  })
}

function storageObject(ctx) {
  const caller = callerToken(ctx)
  if (!caller) return UNAUTHENTICATED()
  const [bucket, object] = ctx.params.map(decodeURIComponent)
  ctx.entry.storage = { bucket, object, kind: caller.kind, principal: caller.principal }
  const denied = () =>
    googleError(403, 'PERMISSION_DENIED', `${caller.principal} does not have storage.objects.get access to the Google Cloud Storage object. Permission 'storage.objects.get' denied on resource (or it may not exist).`)
  if (!caller.scopes.some((s) => STORAGE_SCOPES.includes(s))) return denied()
  if (caller.kind === 'downscoped' && !boundaryAllows(caller.accessBoundary, bucket, object)) return denied()
  return json(200, { kind: 'storage#object', id: `${bucket}/${object}/1`, bucket, name: object, generation: '1', contentType: 'text/csv', size: '0' })
}

// ---------------------------------------------------------------------------------------------
// [bigquery] REST v2 subset

const RESULT_SCHEMA = {
  fields: [
    { name: 'greeting', type: 'STRING', mode: 'NULLABLE' },
    { name: 'principal', type: 'STRING', mode: 'NULLABLE' },
    { name: 'n', type: 'INTEGER', mode: 'NULLABLE' },
  ],
}

/** Wrap a BigQuery handler: require a bearer token with a BigQuery-capable scope. */
function withBigQueryAuth(handle) {
  return (ctx) => {
    const caller = callerToken(ctx)
    if (!caller) return UNAUTHENTICATED()
    if (!caller.scopes.some((s) => BIGQUERY_SCOPES.includes(s))) {
      return googleError(403, 'PERMISSION_DENIED', 'Request had insufficient authentication scopes.')
    }
    return handle(ctx, caller)
  }
}

function createJob(ctx, caller, { jobId, query, location }) {
  const job = { projectId: ctx.params[0], jobId: jobId ?? `job_${randomToken(18)}`, location: location ?? 'US', query, principal: caller.principal }
  ctx.em.bigqueryJobs.set(job.jobId, job)
  ctx.entry.query = query
  return job
}

function jobReference(job) {
  return { projectId: job.projectId, jobId: job.jobId, location: job.location }
}

function queryResponse(job) {
  return {
    kind: 'bigquery#queryResponse',
    schema: RESULT_SCHEMA,
    jobReference: jobReference(job),
    totalRows: '1',
    rows: [{ f: [{ v: GREETING }, { v: job.principal }, { v: '42' }] }],
    totalBytesProcessed: '0',
    jobComplete: true,
    cacheHit: false,
  }
}

function jobResource(job) {
  return {
    kind: 'bigquery#job',
    id: `${job.projectId}:${job.location}.${job.jobId}`,
    jobReference: jobReference(job),
    configuration: { query: { query: job.query, useLegacySql: false }, jobType: 'QUERY' },
    status: { state: 'DONE' },
    statistics: { creationTime: '0', startTime: '0', endTime: '0', totalBytesProcessed: '0', query: { totalBytesProcessed: '0', cacheHit: false } },
    user_email: job.principal,
  }
}

const invalidQuery = () => googleError(400, 'INVALID_ARGUMENT', 'Required parameter is missing: query')

function jobsQuery(ctx, caller) {
  const body = parseJson(ctx.body)
  if (!body?.query) return invalidQuery()
  return json(200, queryResponse(createJob(ctx, caller, { query: body.query, location: body.location })))
}

function jobsInsert(ctx, caller) {
  const body = parseJson(ctx.body)
  const query = body?.configuration?.query?.query
  if (!query) return invalidQuery()
  const job = createJob(ctx, caller, { query, jobId: body.jobReference?.jobId, location: body.jobReference?.location })
  return json(200, jobResource(job))
}

/** Look a job up by the id in the path and render it, or 404. */
function withJob(render) {
  return (ctx) => {
    const job = ctx.em.bigqueryJobs.get(ctx.params[1])
    if (!job) return googleError(404, 'NOT_FOUND', `Not found: Job ${ctx.params[0]}:${ctx.params[1]}`)
    ctx.entry.query = job.query
    return json(200, render(job))
  }
}

const BQ = '^\\/bigquery\\/v2\\/projects\\/([^/]+)'

/** Route table entries: { route, method, pattern, handle(ctx) }. */
export const googleRoutes = [
  { route: 'sts', method: 'POST', pattern: /^\/v1\/token$/, handle: tokenExchange },
  { route: 'iam', method: 'POST', pattern: /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/, handle: generateAccessToken },
  { route: 'iamIdToken', method: 'POST', pattern: /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateIdToken$/, handle: generateIdToken },
  { route: 'iamSignBlob', method: 'POST', pattern: /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):signBlob$/, handle: signBlob },
  { route: 'cloudRun', method: 'GET', pattern: /^\/run\/([^/]+)(?:\/.*)?$/, handle: cloudRun },
  { route: 'cloudRun', method: 'POST', pattern: /^\/run\/([^/]+)(?:\/.*)?$/, handle: cloudRun },
  { route: 'storage', method: 'GET', pattern: /^\/storage\/v1\/b\/([^/]+)\/o\/([^/]+)$/, handle: storageObject },
  { route: 'bigquery', method: 'POST', pattern: new RegExp(`${BQ}\\/queries$`), handle: withBigQueryAuth(jobsQuery) },
  { route: 'bigquery', method: 'POST', pattern: new RegExp(`${BQ}\\/jobs$`), handle: withBigQueryAuth(jobsInsert) },
  { route: 'bigquery', method: 'GET', pattern: new RegExp(`${BQ}\\/queries\\/([^/]+)$`), handle: withBigQueryAuth(withJob(queryResponse)) },
  { route: 'bigquery', method: 'GET', pattern: new RegExp(`${BQ}\\/jobs\\/([^/]+)$`), handle: withBigQueryAuth(withJob(jobResource)) },
]
