// Small wire-format helpers shared by the emulator's route modules.
//
// A route handler never touches `http.ServerResponse`; it returns a plain reply object
//   { status, contentType, body, headers? }
// built with the helpers below. The dispatcher in index.mjs writes it (and can truncate it when a
// `truncate` fault is queued). Times on the wire are RFC 3339 without fractional seconds,
// "YYYY-MM-DDTHH:MM:SSZ", as AWS container endpoints, IMDS and AWS STS send them.

import { randomBytes, randomUUID } from 'node:crypto'

/** A JSON reply. */
export function json(status, value, headers) {
  return { status, contentType: 'application/json', body: JSON.stringify(value), headers }
}

/** A text/plain reply (IMDS answers in plain text). */
export function text(status, value, headers) {
  return { status, contentType: 'text/plain', body: String(value), headers }
}

/** A text/xml reply (AWS query protocol). */
export function xml(status, value, headers) {
  return { status, contentType: 'text/xml', body: value, headers }
}

/** RFC 3339 UTC time without milliseconds, e.g. 2026-01-02T03:04:05Z. */
export function rfc3339(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** Escape a value for an XML text node. */
export function xmlEscape(value) {
  return String(value).replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`)
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** `length` random characters from the AWS key-id alphabet (upper-case base32). */
export function randomBase32(length) {
  const bytes = randomBytes(length)
  return Array.from(bytes, (b) => BASE32[b & 31]).join('')
}

/** URL-safe random string of about `bytes * 4 / 3` characters. */
export function randomToken(bytes = 24) {
  return randomBytes(bytes).toString('base64url')
}

/** Standard base64 (with `+`, `/`, `=`), like real AWS secrets and session tokens. */
export function randomBase64(bytes) {
  return randomBytes(bytes).toString('base64')
}

export { randomUUID }

/** Read a whole request body as UTF-8 (bounded, so a broken client cannot exhaust memory). */
export function readBody(req, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    req.on('data', (chunk) => {
      size += chunk.length
      if (size > limit) {
        reject(new Error('request body too large'))
        req.destroy()
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

/** Parse a JSON request body; returns undefined when it is not valid JSON. */
export function parseJson(body) {
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}

/** Extract the bearer token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(headers) {
  const match = /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '')
  return match ? match[1] : null
}
