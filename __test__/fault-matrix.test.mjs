// The fault matrix of issue #6, table-driven, for the three endpoints the addon calls over HTTP:
// the container credentials endpoint (ContainerAwsCredentialsSupplier), Google STS and IAM
// Credentials generateAccessToken (GoogleTokenFetcher). Each row injects one fault on the
// loopback emulator and asserts the error code (and retryability, status and attempt count), or
// the recovery, within a bounded time.
//
// faults.test.mjs and fetcher.test.mjs already cover part of the matrix (container: 400-404, 500,
// 503, hang, delay, truncation, HTML, reset; STS: 400, 500 x3, hang, HTML 200; IAM: 401, 403, no
// accessToken). This file runs the whole matrix uniformly on all three endpoints, so a gap on one
// of them shows, plus static stability (issue #6 item 4): the endpoint down at refresh time with
// valid cached credentials, then expired while still down, then recovered; and credentials that
// expire while in use (a skewed endpoint clock).
//
// Like faults.test.mjs, every test gets a FULL_URI path of its own (a cold process-wide cache).
//
// Run: node --test __test__/fault-matrix.test.mjs

import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { after, afterEach, before, beforeEach, describe, test } from 'node:test'
import { DEFAULT_CONFIG, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { rfc3339 } from './emulator/wire.mjs'
import { FETCHER_CODES, assertSupplierError, impersonationUrl, pollUntil } from './support.mjs'

makeProcessHermetic()
const { ContainerAwsCredentialsSupplier, GoogleTokenFetcher } = createRequire(import.meta.url)('../index.js')

const TEST_TIMEOUT = { timeout: 30_000 }
const SLACK_MS = 2000
const TIMEOUT_MS = 800
const VARS = ['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_REGION']

let em
let seq = 0
before(async () => {
  em = await startEmulator()
})
beforeEach(() => {
  em.reset()
  em.config = { ...DEFAULT_CONFIG }
})
afterEach(() => {
  for (const key of VARS) delete process.env[key]
})
after(async () => {
  await em?.close()
})

/** Point the process at a FULL_URI no other test used, then build with `make` (it snapshots the env). */
function fresh(make) {
  for (const key of VARS) delete process.env[key]
  process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = `${em.url}/v2/credentials/matrix-${process.pid}-${++seq}`
  process.env.AWS_REGION = 'us-east-1'
  return make()
}

const googleOptions = (extra) => ({
  audience: DEFAULT_CONFIG.audience,
  tokenUrl: `${em.url}/v1/token`,
  serviceAccountImpersonationUrl: impersonationUrl(em.url, DEFAULT_CONFIG.serviceAccount),
  ...extra,
})

/**
 * The three endpoints: how to call through them, the error code of a failed call, and a valid 2xx
 * body to serve with a wrong content type (the Google ones without impersonation for STS, since
 * the emulator's IAM would refuse a made-up STS token).
 */
const ENDPOINTS = {
  container: {
    code: 'CREDENTIALS_ENDPOINT_ERROR',
    invalid: 'INVALID_CREDENTIALS_RESPONSE',
    codes: undefined,
    make: (opts = {}) => fresh(() => new ContainerAwsCredentialsSupplier(opts)),
    call: (client) => client.getAwsSecurityCredentials(),
    validBody: () => ({ AccessKeyId: 'ASIAMATRIXMATRIX0001', SecretAccessKey: 'matrix-secret', Token: 'matrix-token', Expiration: rfc3339(Date.now() + 3_600_000) }),
    check: (value) => assert.equal(typeof value.accessKeyId, 'string'),
  },
  sts: {
    code: 'STS_EXCHANGE_FAILED',
    invalid: 'INVALID_TOKEN_RESPONSE',
    codes: FETCHER_CODES,
    make: (opts = {}) => fresh(() => new GoogleTokenFetcher(googleOptions({ serviceAccountImpersonationUrl: undefined, ...opts }))),
    call: (client) => client.getAccessToken(),
    validBody: () => ({ access_token: 'matrix-sts-token', issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 3600 }),
    check: (value) => assert.equal(typeof value.token, 'string'),
  },
  iam: {
    code: 'IMPERSONATION_FAILED',
    invalid: 'INVALID_TOKEN_RESPONSE',
    codes: FETCHER_CODES,
    make: (opts = {}) => fresh(() => new GoogleTokenFetcher(googleOptions(opts))),
    call: (client) => client.getAccessToken(),
    validBody: () => ({ accessToken: 'matrix-sa-token', expireTime: rfc3339(Date.now() + 3_600_000) }),
    check: (value) => assert.equal(typeof value.token, 'string'),
  },
}

async function timed(promise) {
  const started = performance.now()
  try {
    return { value: await promise, ms: performance.now() - started }
  } catch (error) {
    return { error, ms: performance.now() - started }
  }
}

/**
 * The matrix. `faults`: queued on the endpoint's route (a trailing `always` is set persistently);
 * `expect`: {code, status?, retryable?, attempts?: n | [min, max], ok?: true, maxMs?}.
 */
const ROWS = [
  ...[400, 401, 403, 404].map((status) => ({ name: `HTTP ${status}`, always: { status }, expect: { status, retryable: false, attempts: 1 } })),
  ...[429, 500, 503].map((status) => ({ name: `HTTP ${status} on every attempt`, always: { status }, expect: { status, retryable: true, attempts: 3 } })),
  ...[429, 500, 503].map((status) => ({ name: `HTTP ${status} once, then recovery`, faults: [{ status }], expect: { ok: true, attempts: 2 } })),
  { name: 'answer delayed past timeoutMs', always: { delayMs: 10_000 }, options: { timeoutMs: TIMEOUT_MS }, expect: { code: 'TIMEOUT', retryable: true, minMs: TIMEOUT_MS - 100, maxMs: TIMEOUT_MS + SLACK_MS } },
  // One attempt may use all of timeoutMs: a slow answer is waited for, not cut and sent again.
  { name: 'answer delayed 6 s within a 12 s timeoutMs: the first attempt gets it', faults: [{ delayMs: 6000 }], options: { timeoutMs: 12_000 }, expect: { ok: true, attempts: 1, minMs: 5900, maxMs: 6000 + SLACK_MS } },
  // An error body over the 64 KiB cap keeps its status, and so its retry.
  { name: '503 with a 70,000-byte body once, then recovery', faults: [{ status: 503, body: 'x'.repeat(70_000) }], expect: { ok: true, attempts: 2 } },
  { name: '503 with a 70,000-byte body on every attempt', always: { status: 503, body: 'x'.repeat(70_000) }, expect: { status: 503, retryable: true, attempts: 3 } },
  { name: 'never answers', always: { hang: true }, options: { timeoutMs: TIMEOUT_MS }, expect: { code: 'TIMEOUT', retryable: true, minMs: TIMEOUT_MS - 100, maxMs: TIMEOUT_MS + SLACK_MS } },
  { name: 'connection reset on every attempt', always: { reset: true }, options: { timeoutMs: 3000 }, expect: { retryable: true, attempts: [1, 3], maxMs: 3000 + SLACK_MS } },
  { name: 'connection reset once, then recovery', faults: [{ reset: true }], expect: { ok: true, attempts: 2 } },
  { name: 'truncated 2xx body', faults: [{ truncate: true }], expect: { invalid: true, attempts: 1 } },
  { name: '2xx HTML page (text/html)', faults: [{ status: 200, contentType: 'text/html', body: '<html><body>Service Unavailable</body></html>' }], expect: { invalid: true, attempts: 1 } },
  { name: '2xx valid JSON with a wrong content type (text/plain)', faults: (ep) => [{ status: 200, contentType: 'text/plain', body: ep.validBody() }], expect: { ok: true, attempts: 1 } },
  { name: '502 HTML error page (text/html) on every attempt', always: { status: 502, contentType: 'text/html', body: '<html>bad gateway</html>' }, expect: { status: 502, retryable: true, attempts: 3 } },
]

for (const [route, ep] of Object.entries(ENDPOINTS)) {
  describe(`fault matrix: ${route}`, () => {
    for (const row of ROWS) {
      test(row.name, TEST_TIMEOUT, async () => {
        const faults = typeof row.faults === 'function' ? row.faults(ep) : row.faults ?? []
        if (faults.length) em.fault(route, ...faults)
        if (row.always) em.setAlways(route, row.always)
        const client = ep.make(row.options)
        const { value, error, ms } = await timed(ep.call(client))
        const x = row.expect
        const attempts = em.count(route)
        if (x.ok) {
          assert.equal(error, undefined, `${error?.code}: ${error?.message}`)
          ep.check(value)
        } else {
          const code = x.code ?? (x.invalid ? ep.invalid : ep.code)
          assertSupplierError(error, code, { codes: ep.codes })
          if (x.status !== undefined) assert.equal(error.status, x.status)
          if (x.retryable !== undefined) assert.equal(error.retryable, x.retryable, error.message)
          if (route !== 'container') assert.equal(em.count('container'), 1, 'the AWS side was fetched once')
          if (route === 'sts') assert.equal(em.count('iam'), 0, 'IAM is not called after a failed exchange')
          // Not cached: with the fault gone, the same client succeeds.
          em.setAlways(route, null)
          em.reset()
          ep.check(await ep.call(client))
        }
        if (Array.isArray(x.attempts)) assert.ok(attempts >= x.attempts[0] && attempts <= x.attempts[1], `${attempts} attempts`)
        else if (x.attempts !== undefined) assert.equal(attempts, x.attempts, 'attempts')
        if (x.minMs !== undefined) assert.ok(ms >= x.minMs, `gave up after ${Math.round(ms)} ms`)
        assert.ok(ms <= (x.maxMs ?? 5000 + SLACK_MS), `took ${Math.round(ms)} ms`)
      })
    }
  })
}

describe('static stability (container endpoint)', () => {
  test('down at refresh time: keeps serving the valid credentials without hammering, a coded error once they expire, recovers by itself', { timeout: 30_000 }, async () => {
    em.config.credentialsTtlMs = 3000 // on the wire: whole seconds, so 2-3 s of life
    const supplier = ENDPOINTS.container.make({ refreshMarginSeconds: 3, timeoutMs: 2000 })
    const first = await supplier.getAwsSecurityCredentials()
    const expiresAt = Math.floor(em.issued.get(first.accessKeyId).expiresAt / 1000) * 1000
    em.setAlways('container', { status: 503 })

    // Poll every 50 ms until the first error: every answer before it is the cached credentials,
    // given while they are still valid.
    let requestsBeforeExpiry = 0
    const error = await pollUntil(
      async () => {
        try {
          const c = await supplier.getAwsSecurityCredentials()
          assert.ok(Date.now() < expiresAt + 50, 'served credentials past their expiration')
          assert.deepEqual(c, first)
          requestsBeforeExpiry = em.count('container')
          return false
        } catch (e) {
          return e
        }
      },
      { timeoutMs: 10_000, what: 'the error after expiry' },
    )
    assert.ok(Date.now() >= expiresAt - 50, 'failed before the credentials expired')
    assertSupplierError(error, 'CREDENTIALS_ENDPOINT_ERROR')
    assert.equal(error.status, 503)
    assert.equal(error.retryable, true)
    // The initial fetch, then one refresh round of 3 attempts; the backoff (from 5 s, capped at the
    // expiry) allows no other round before the expiry, however often the app calls.
    assert.equal(requestsBeforeExpiry, 1 + 3, 'requests while the cached credentials were valid')

    // Recovery by itself: the same supplier, no intervention but the endpoint coming back.
    em.setAlways('container', null)
    const fresh = await supplier.getAwsSecurityCredentials()
    assert.notEqual(fresh.accessKeyId, first.accessKeyId)
    assert.ok(em.issued.get(fresh.accessKeyId))
  })

  test('clock skew: credentials that expire while in use are refreshed before they expire, never served expired', { timeout: 30_000 }, async () => {
    // The endpoint's clock is 6 h - 2.5 s behind: the 6-hour credentials it issues expire 2.5 s
    // from now on this host's clock.
    em.config.clockSkewMs = -DEFAULT_CONFIG.credentialsTtlMs + 2500
    const supplier = ENDPOINTS.container.make({})
    const seen = []
    await pollUntil(
      async () => {
        const c = await supplier.getAwsSecurityCredentials()
        const wireExpiry = Math.floor(em.issued.get(c.accessKeyId).expiresAt / 1000) * 1000
        assert.ok(Date.now() < wireExpiry, `served ${c.accessKeyId} after its expiration`)
        if (seen.at(-1)?.accessKeyId !== c.accessKeyId) seen.push({ accessKeyId: c.accessKeyId, wireExpiry, at: Date.now() })
        return seen.length >= 3
      },
      { timeoutMs: 15_000, intervalMs: 50, what: 'two refreshes' },
    )
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].at < seen[i - 1].wireExpiry, 'the refresh came before the expiry')
    assert.equal(em.count('container'), seen.length, 'one request per refresh')
  })
})
