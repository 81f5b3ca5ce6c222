// The emulator's independent judge of AWS subject tokens (Google STS, subject_token_type
// urn:ietf:params:aws:token-type:aws4_request). It plays the part AWS plays in production: Google STS
// forwards the signed GetCallerIdentity request to AWS, and AWS checks the SigV4 signature.
//
// Subject token wire format: percent-encoded JSON (encodeURIComponent in Node, QueryEscape with `+` for
// space in Go, form_urlencoded in Rust; raw JSON is also accepted)
//   {"url":"https://sts.<region>.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
//    "method":"POST",
//    "headers":[{"key":"authorization","value":"AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/<region>/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=<hex>"},
//               {"key":"host","value":"sts.<region>.amazonaws.com"},{"key":"x-amz-date","value":"YYYYMMDDTHHMMSSZ"},
//               {"key":"x-amz-security-token","value":"..."},{"key":"x-goog-cloud-target-resource","value":"<audience>"}],
//    "body":""}                       (body optional; header names case-insensitive; key order free)
//
// The signature is recomputed with @smithy/signature-v4 (the AWS SDK for JavaScript's signer), over
// exactly the headers named in SignedHeaders, and compared in constant time. Nothing here depends on the
// addon under test. google-auth-library leaves x-goog-cloud-target-resource unsigned, Go and Rust sign
// it: both verify, because only what SignedHeaders lists is signed.
//
// verifySubjectToken() never throws; it returns a verdict
//   { ok, reason, message, awsCode?, accessKeyId?, signedHeaders?, region?, arn? }
// where `reason` is one of the stable codes in REASONS below.

import { timingSafeEqual } from 'node:crypto'
import { Sha256 } from '@aws-crypto/sha256-js'
import { SignatureV4 } from '@smithy/signature-v4'

/** AWS rejects a SigV4 request whose date is further than this from its clock. */
export const MAX_DATE_SKEW_MS = 15 * 60 * 1000

/** Every reason a verdict can carry. */
export const REASONS = [
  'ok',
  'malformed-subject-token', // not (percent-encoded) JSON of {url, method, headers[]}
  'bad-url', // not https://sts[-fips].<region>.amazonaws.com[/]?Action=GetCallerIdentity&Version=2011-06-15
  'bad-method', // not POST
  'duplicate-header',
  'host-mismatch', // host header differs from the URL's host
  'missing-target-resource', // no x-goog-cloud-target-resource header
  'target-resource-mismatch', // x-goog-cloud-target-resource differs from the audience
  'malformed-authorization', // no or unparsable AWS4-HMAC-SHA256 Authorization header
  'scope-mismatch', // credential scope service/region/date disagrees with the request
  'unsigned-required-header', // host or x-amz-date not in SignedHeaders
  'signed-header-missing', // SignedHeaders names a header the request does not carry
  'malformed-date', // x-amz-date not YYYYMMDDTHHMMSSZ
  'stale-date', // x-amz-date more than 15 minutes from now
  'unknown-access-key', // key not issued by (or registered with) this emulator
  'expired-credentials',
  'missing-security-token', // key was issued with a session token, request has none
  'security-token-mismatch',
  'signed-headers-unsupported', // SignedHeaders uses a header the verifier cannot reproduce (e.g. date)
  'signature-mismatch',
]

const STS_HOST = /^sts(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com$/
const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/\s]+)\/(\d{8})\/([^/\s]+)\/([^/\s]+)\/aws4_request,\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/

/** A failed check: carries the verdict fields. */
class Rejection extends Error {
  constructor(reason, message, awsCode) {
    super(message)
    this.reason = reason
    this.awsCode = awsCode
  }
}

function reject(reason, message, awsCode) {
  throw new Rejection(reason, message, awsCode)
}

/** Decode the form value into {url, method, headers: [{key, value}], body?}. */
export function decodeSubjectToken(raw) {
  let request
  try {
    const textJson = raw.trimStart().startsWith('{') ? raw : decodeURIComponent(raw.replace(/\+/g, ' '))
    request = JSON.parse(textJson)
  } catch {
    reject('malformed-subject-token', 'The subject token is not URL-encoded JSON')
  }
  const wellFormed =
    request &&
    typeof request.url === 'string' &&
    typeof request.method === 'string' &&
    Array.isArray(request.headers) &&
    request.headers.every((h) => h && typeof h.key === 'string' && typeof h.value === 'string') &&
    (request.body === undefined || typeof request.body === 'string')
  if (!wellFormed) reject('malformed-subject-token', 'The subject token must be JSON {url, method, headers:[{key, value}], body?}')
  return request
}

/** Lower-cased header map; duplicate names are refused rather than guessed at. */
function headerMap(headers) {
  const map = new Map()
  for (const { key, value } of headers) {
    const name = key.toLowerCase()
    if (map.has(name)) reject('duplicate-header', `Header ${name} appears more than once`)
    map.set(name, value)
  }
  return map
}

/** Check the URL is the regional GetCallerIdentity call; returns {url, region}. */
function checkUrl(rawUrl) {
  let url
  try {
    url = new URL(rawUrl)
  } catch {
    reject('bad-url', `Invalid AWS URL ${rawUrl}`)
  }
  const host = STS_HOST.exec(url.hostname)
  const ok = url.protocol === 'https:' && url.port === '' && host && url.pathname === '/' && url.search === '?Action=GetCallerIdentity&Version=2011-06-15'
  if (!ok) reject('bad-url', `The subject token URL must be https://sts.<region>.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15, got ${rawUrl}`)
  return { url, region: host[1] }
}

function parseAuthorization(value) {
  const m = AUTHORIZATION.exec(value ?? '')
  if (!m) reject('malformed-authorization', 'Missing or malformed AWS4-HMAC-SHA256 Authorization header', 'IncompleteSignature')
  const [, accessKeyId, date, region, service, signedHeaderList, signature] = m
  return { accessKeyId, date, region, service, signedHeaders: signedHeaderList.split(';'), signature }
}

function parseAmzDate(value) {
  const m = AMZ_DATE.exec(value ?? '')
  if (!m) reject('malformed-date', `x-amz-date must be YYYYMMDDTHHMMSSZ, got ${value}`, 'IncompleteSignature')
  const [, y, mo, d, h, mi, s] = m.map(Number)
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s))
}

function checkTarget(headers, url, audience) {
  if (headers.get('host') !== url.host) reject('host-mismatch', `host header ${headers.get('host')} does not match ${url.host}`)
  const target = headers.get('x-goog-cloud-target-resource')
  if (target === undefined) reject('missing-target-resource', 'The subject token lacks the x-goog-cloud-target-resource header')
  if (target !== audience) reject('target-resource-mismatch', `x-goog-cloud-target-resource ${target} does not match the audience ${audience}`)
}

function checkScope(auth, headers, region) {
  if (auth.service !== 'sts' || auth.region !== region) {
    reject('scope-mismatch', `Credential should be scoped to a valid region and service 'sts', got ${auth.region}/${auth.service}`, 'SignatureDoesNotMatch')
  }
  for (const required of ['host', 'x-amz-date']) {
    if (!auth.signedHeaders.includes(required)) reject('unsigned-required-header', `Header ${required} must be signed`, 'SignatureDoesNotMatch')
  }
  for (const name of auth.signedHeaders) {
    if (!headers.has(name)) reject('signed-header-missing', `Signed header ${name} is not in the request`, 'SignatureDoesNotMatch')
  }
  if (!headers.get('x-amz-date')?.startsWith(auth.date)) {
    reject('scope-mismatch', `Credential date ${auth.date} does not match x-amz-date ${headers.get('x-amz-date')}`, 'SignatureDoesNotMatch')
  }
}

function checkDate(signingDate, nowMs, maxSkewMs, rawDate) {
  if (Math.abs(nowMs - signingDate.getTime()) > maxSkewMs) {
    const now = new Date(nowMs).toISOString().replace(/[-:]|\.\d{3}/g, '')
    reject('stale-date', `Signature expired: ${rawDate} is now earlier than ${now} - 15 min.`, 'SignatureDoesNotMatch')
  }
}

function checkKey(key, accessKeyId, headers, nowMs) {
  if (!key) reject('unknown-access-key', 'The security token included in the request is invalid.', 'InvalidClientTokenId')
  if (key.expiresAt != null && nowMs >= key.expiresAt) reject('expired-credentials', 'The security token included in the request is expired', 'ExpiredToken')
  const sent = headers.get('x-amz-security-token')
  if (key.token && sent === undefined) reject('missing-security-token', `Access key ${accessKeyId} requires its session token`, 'InvalidClientTokenId')
  if ((key.token ?? undefined) !== sent) reject('security-token-mismatch', 'The security token included in the request is invalid.', 'InvalidClientTokenId')
}

/** Recompute the signature over exactly the signed headers; returns {signature, signedHeaders}. */
async function recomputeSignature(request, url, headers, auth, key, signingDate) {
  const signed = Object.fromEntries(auth.signedHeaders.map((name) => [name, headers.get(name)]))
  const signer = new SignatureV4({
    service: auth.service,
    region: auth.region,
    sha256: Sha256,
    credentials: { accessKeyId: auth.accessKeyId, secretAccessKey: key.secretAccessKey },
    applyChecksum: false,
  })
  const signedRequest = await signer.sign(
    {
      method: request.method,
      protocol: url.protocol,
      hostname: url.hostname,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: signed,
      body: request.body || undefined,
    },
    { signingDate, signableHeaders: new Set(auth.signedHeaders) },
  )
  const m = AUTHORIZATION.exec(signedRequest.headers.authorization)
  return { signature: m[6], signedHeaders: m[5] }
}

/** The verdict of a Rejection; anything else is a bug in the oracle and is thrown on. */
function failedVerdict(err) {
  if (!(err instanceof Rejection)) throw err
  const { reason, message, awsCode, accessKeyId, signedHeaders, region } = err
  return { ok: false, reason, message, awsCode, accessKeyId, signedHeaders, region }
}

function sameHex(a, b) {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))
}

/**
 * The checks every signed request gets once its Authorization header is parsed: scope, date, key and
 * session token, then the signature recomputed and compared. Returns the ok verdict; throws a
 * Rejection carrying `partial`.
 */
async function checkSigned(request, url, headers, auth, { region, lookupKey, nowMs, maxSkewMs }) {
  const partial = { accessKeyId: auth.accessKeyId, signedHeaders: auth.signedHeaders, region }
  try {
    checkScope(auth, headers, region)
    const signingDate = parseAmzDate(headers.get('x-amz-date'))
    checkDate(signingDate, nowMs, maxSkewMs, headers.get('x-amz-date'))
    const key = lookupKey(auth.accessKeyId)
    checkKey(key, auth.accessKeyId, headers, nowMs)
    const expected = await recomputeSignature(request, url, headers, auth, key, signingDate)
    if (expected.signedHeaders !== auth.signedHeaders.join(';')) {
      reject('signed-headers-unsupported', `SignedHeaders ${auth.signedHeaders.join(';')} cannot be reproduced (got ${expected.signedHeaders})`, 'SignatureDoesNotMatch')
    }
    if (!sameHex(expected.signature, auth.signature)) {
      reject('signature-mismatch', 'The AWS request signature does not match the signature we calculated. Check your AWS Secret Access Key and signing method.', 'SignatureDoesNotMatch')
    }
    return { ok: true, reason: 'ok', message: 'verified', ...partial, arn: key.arn }
  } catch (err) {
    if (err instanceof Rejection) Object.assign(err, partial)
    throw err
  }
}

async function verify(raw, { audience, lookupKey, nowMs, maxSkewMs }) {
  const request = decodeSubjectToken(raw)
  const { url, region } = checkUrl(request.url)
  if (request.method !== 'POST') reject('bad-method', `The subject token method must be POST, got ${request.method}`)
  const headers = headerMap(request.headers)
  checkTarget(headers, url, audience)
  const auth = parseAuthorization(headers.get('authorization'))
  return checkSigned(request, url, headers, auth, { region, lookupKey, nowMs, maxSkewMs })
}

/**
 * Verify a subject token. `lookupKey(accessKeyId)` returns {secretAccessKey, token?, expiresAt?, arn?}
 * or undefined. Returns a verdict; never throws.
 */
export async function verifySubjectToken(raw, { audience, lookupKey, nowMs = Date.now(), maxSkewMs = MAX_DATE_SKEW_MS }) {
  try {
    return await verify(raw, { audience, lookupKey, nowMs, maxSkewMs })
  } catch (err) {
    return failedVerdict(err)
  }
}

/**
 * Verify a SigV4-signed AWS STS request as the emulator received it: `AssumeRole` sent by
 * aws-config's profile provider (role_arn + source_profile). `request`: {method, path (with its
 * query), headers (node's lower-cased header object), body (string)}. The credential scope must be
 * service `sts`. The same checks as for a subject token (scope, date, key, token) and the
 * signature recomputed with @smithy/signature-v4 over the headers SignedHeaders names, the path, the
 * query and the body as received. Returns a verdict; never throws.
 */
export async function verifySignedRequest(request, { lookupKey, nowMs = Date.now(), maxSkewMs = MAX_DATE_SKEW_MS }) {
  try {
    const headers = new Map(Object.entries(request.headers).filter(([, value]) => typeof value === 'string'))
    if (!headers.get('host')) reject('host-mismatch', 'The request has no host header')
    const url = new URL(request.path, `http://${headers.get('host')}`)
    const auth = parseAuthorization(headers.get('authorization'))
    return await checkSigned({ method: request.method, body: request.body }, url, headers, auth, { region: auth.region, lookupKey, nowMs, maxSkewMs })
  } catch (err) {
    return failedVerdict(err)
  }
}
