// A minimal reference SigV4 signer for the AWS subject token, written from the SigV4 spec with
// node:crypto only. Tests use it to build subject tokens in the shapes other libraries produce
// (Go and Rust sign x-goog-cloud-target-resource, use other header casing and encodings) and to forge
// bad ones (old dates, unknown keys). It shares no code with the emulator's verifier (which uses
// @smithy/signature-v4) nor with the addon under test, so agreement between them means something.
//
// Canonical request for GetCallerIdentity (query already in canonical order):
//   POST\n/\nAction=GetCallerIdentity&Version=2011-06-15\n<name:value\n for each signed header>\n
//   <signed;header;names>\n<sha256 hex of the body>
// String to sign: AWS4-HMAC-SHA256\n<amzDate>\n<date>/<region>/sts/aws4_request\n<sha256 hex of canonical>

import { createHash, createHmac } from 'node:crypto'

const QUERY = 'Action=GetCallerIdentity&Version=2011-06-15'

const sha256Hex = (data) => createHash('sha256').update(data).digest('hex')
const hmac = (key, data) => createHmac('sha256', key).update(data).digest()

/** YYYYMMDDTHHMMSSZ */
export function amzDate(date) {
  return date.toISOString().replace(/[-:]|\.\d{3}/g, '')
}

/** Header-name spellings of the libraries we imitate. */
const CASING = {
  node: (name) => name,
  go: (name) => name.replace(/(^|-)([a-z])/g, (_, dash, c) => dash + c.toUpperCase()),
}

/**
 * Build a signed GetCallerIdentity request object {url, method, headers: [{key, value}], body?}.
 *   style 'node': google-auth-library 10.x shape (target resource unsigned, lower-case sorted headers, no body)
 *   style 'go':   golang.org/x/oauth2 shape (target resource signed, canonical header casing, body "")
 * `signTargetResource` overrides the style's choice; `slashBeforeQuery` puts "/" before "?".
 */
export function signGetCallerIdentity({ credentials, region, audience, date = new Date(), style = 'node', signTargetResource, slashBeforeQuery = false, body }) {
  const host = `sts.${region}.amazonaws.com`
  const stamp = amzDate(date)
  const headers = { host, 'x-amz-date': stamp }
  if (credentials.token) headers['x-amz-security-token'] = credentials.token
  const signTarget = signTargetResource ?? style !== 'node'
  if (signTarget) headers['x-goog-cloud-target-resource'] = audience
  const signedNames = Object.keys(headers).sort()
  const payload = body ?? (style === 'node' ? undefined : '')
  const canonical = ['POST', '/', QUERY, ...signedNames.map((n) => `${n}:${headers[n]}`), '', signedNames.join(';'), sha256Hex(payload ?? '')].join('\n')
  const scope = `${stamp.slice(0, 8)}/${region}/sts/aws4_request`
  const stringToSign = ['AWS4-HMAC-SHA256', stamp, scope, sha256Hex(canonical)].join('\n')
  let key = `AWS4${credentials.secretAccessKey}`
  for (const part of [stamp.slice(0, 8), region, 'sts', 'aws4_request']) key = hmac(key, part)
  const signature = hmac(key, stringToSign).toString('hex')
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedNames.join(';')}, Signature=${signature}`
  headers['x-goog-cloud-target-resource'] = audience
  const casing = CASING[style]
  const request = {
    url: `https://${host}${slashBeforeQuery ? '/' : ''}?${QUERY}`,
    method: 'POST',
    headers: Object.keys(headers)
      .sort()
      .map((name) => ({ key: casing(name), value: headers[name] })),
  }
  if (payload !== undefined) request.body = payload
  return request
}

/** Serialise like the library of `style`: 'node' encodeURIComponent, 'go' QueryEscape (+ for space). */
export function encodeSubjectToken(request, style = 'node') {
  const encoded = encodeURIComponent(JSON.stringify(request))
  return style === 'go' ? encoded.replace(/%20/g, '+') : encoded
}

/** Replace the value of header `name` (case-insensitive) in a request object; returns a copy. */
export function withHeader(request, name, value) {
  return {
    ...request,
    headers: request.headers.map((h) => (h.key.toLowerCase() === name.toLowerCase() ? { key: h.key, value } : h)),
  }
}
