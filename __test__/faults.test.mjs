// ContainerAwsCredentialsSupplier against a faulty container credentials endpoint (loopback
// AWS_CONTAINER_CREDENTIALS_FULL_URI on the emulator): retries, invalid bodies, status codes, time
// bounds, host validation, caching (single flight, failures never cached, stale-while-valid) and
// worker_threads.
//
// These tests run in this (hermetic) process. The supplier snapshots the environment when it is
// constructed and caches process-wide per (environment, options), so every test gives its
// supplier a FULL_URI with a path of its own (/v2/credentials/<test-id>): a distinct environment,
// hence a cold cache of its own, while the emulator routes every such path the same way.
//
// Run: node --test __test__/faults.test.mjs

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, beforeEach, describe, test } from 'node:test'
import { DEFAULT_CONFIG, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { rfc3339 } from './emulator/wire.mjs'
import { assertSupplierError, here, inWorkers, pollUntil, rejection, unusedPort } from './support.mjs'

makeProcessHermetic()
const INDEX = here('../index.js')
const { ContainerAwsCredentialsSupplier } = createRequire(import.meta.url)(INDEX)

const TEST_TIMEOUT = { timeout: 30_000 }
const SLACK_MS = 2000
const CONTAINER_VARS = ['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE']

let em
let dir
let seq = 0

before(async () => {
  em = await startEmulator()
  dir = mkdtempSync(join(tmpdir(), 'aws-wif-faults-'))
})
beforeEach(() => {
  em.reset()
  em.config = { ...DEFAULT_CONFIG }
})
afterEach(() => {
  for (const key of CONTAINER_VARS) delete process.env[key]
})
after(async () => {
  await em.close()
  rmSync(dir, { recursive: true, force: true })
})

/** A FULL_URI no other test uses (so its process-wide cache entry is cold). */
const uniqueUri = () => `${em.url}/v2/credentials/faults-${process.pid}-${++seq}`

/** Point the container variables at `uri` (plus `vars`), then construct a supplier. */
function supplierAt(uri, options, vars = {}) {
  for (const key of CONTAINER_VARS) delete process.env[key]
  Object.assign(process.env, { AWS_CONTAINER_CREDENTIALS_FULL_URI: uri, ...vars })
  return new ContainerAwsCredentialsSupplier(options)
}

/** Call getAwsSecurityCredentials and time it: {value | error, ms}. */
async function timed(supplier) {
  const started = performance.now()
  try {
    return { value: await supplier.getAwsSecurityCredentials(), ms: performance.now() - started }
  } catch (error) {
    return { error, ms: performance.now() - started }
  }
}

/** The credentials were issued by the emulator, unchanged. */
function assertIssued(creds) {
  const issued = em.issued.get(creds.accessKeyId)
  assert.ok(issued, `key ${creds.accessKeyId} was not issued by the emulator`)
  assert.equal(creds.secretAccessKey, issued.secretAccessKey)
  assert.equal(creds.token, issued.token)
}

describe('retries', () => {
  test('500, 500, then 200: succeeds after exactly 3 requests', TEST_TIMEOUT, async () => {
    em.fault('container', { status: 500 }, { status: 500 })
    const creds = await supplierAt(uniqueUri()).getAwsSecurityCredentials()
    assertIssued(creds)
    assert.deepEqual(em.requests.map((r) => r.status), [500, 500, 200])
  })

  test('503 on every request: CREDENTIALS_ENDPOINT_ERROR, retryable, status 503, 3 requests', TEST_TIMEOUT, async () => {
    em.setAlways('container', { status: 503 })
    const { error } = await timed(supplierAt(uniqueUri()))
    assertSupplierError(error, 'CREDENTIALS_ENDPOINT_ERROR')
    assert.equal(error.retryable, true)
    assert.equal(error.status, 503)
    assert.equal(em.count('container'), 3, 'at most 3 attempts, and all 3 used within the default bound')
  })

  for (const status of [400, 401, 403, 404]) {
    test(`${status}: CREDENTIALS_ENDPOINT_ERROR, status ${status}, not retryable, not retried`, TEST_TIMEOUT, async () => {
      em.setAlways('container', { status, body: { code: 'Refused', message: `emulated ${status}` } })
      const error = await rejection(supplierAt(uniqueUri()).getAwsSecurityCredentials())
      assertSupplierError(error, 'CREDENTIALS_ENDPOINT_ERROR')
      assert.equal(error.status, status)
      assert.equal(error.retryable, false)
      assert.match(error.message, new RegExp(`HTTP ${status}`))
      assert.equal(em.count('container'), 1)
    })
  }
})

describe('unusable 2xx bodies', () => {
  const complete = () => ({ AccessKeyId: 'ASIAFAULTSFAULTS0001', SecretAccessKey: 'fault/secret', Token: 'fault-token', Expiration: rfc3339(Date.now() + 3_600_000) })
  const cases = [
    ['malformed JSON', () => ({ status: 200, body: '{"AccessKeyId": "ASIA", oops' }), 'INVALID_CREDENTIALS_RESPONSE', /not valid JSON/],
    ['an HTML page', () => ({ status: 200, body: '<html>gateway</html>', contentType: 'text/html' }), 'INVALID_CREDENTIALS_RESPONSE', /not valid JSON/],
    ['a truncated body', () => ({ truncate: true }), 'INVALID_CREDENTIALS_RESPONSE', /truncated/],
    ['missing Token and Expiration', () => ({ status: 200, body: { AccessKeyId: 'ASIAFAULTSFAULTS0001', SecretAccessKey: 'fault/secret' } }), 'INVALID_CREDENTIALS_RESPONSE', /without Token, Expiration/],
    ['a non-RFC 3339 Expiration', () => ({ status: 200, body: { ...complete(), Expiration: 'tomorrow at noon' } }), 'INVALID_CREDENTIALS_RESPONSE', /RFC 3339/],
    ['{"Code":"CredentialsUninitialized"}', () => ({ status: 200, body: { Code: 'CredentialsUninitialized', Message: 'agent starting' } }), 'CREDENTIALS_ENDPOINT_ERROR', /CredentialsUninitialized/],
    ['an Expiration in the past', () => ({ status: 200, body: { ...complete(), Expiration: rfc3339(Date.now() - 60_000) } }), 'CREDENTIALS_EXPIRED', /expired at/],
    ['a body over the 64 KiB cap (valid JSON padded to 70 kB)', () => ({ status: 200, body: { ...complete(), Padding: 'x'.repeat(70_000) } }), 'INVALID_CREDENTIALS_RESPONSE', /larger than 65536 bytes/],
  ]
  for (const [name, fault, code, message] of cases) {
    test(`${name}: ${code}`, TEST_TIMEOUT, async () => {
      em.fault('container', fault())
      const error = await rejection(supplierAt(uniqueUri()).getAwsSecurityCredentials())
      assertSupplierError(error, code)
      assert.match(error.message, message)
      assert.equal(em.count('container'), 1, 'a 2xx answer is not retried')
    })
  }
})

describe('transport failures and time bounds', () => {
  test('endpoint down (nothing listening): CREDENTIALS_ENDPOINT_ERROR within the bound', TEST_TIMEOUT, async () => {
    const port = await unusedPort()
    const { error, ms } = await timed(supplierAt(`http://127.0.0.1:${port}/v1/credentials`, { timeoutMs: 1500 }))
    assertSupplierError(error, 'CREDENTIALS_ENDPOINT_ERROR')
    assert.equal(error.retryable, true)
    assert.ok(ms < 1500 + SLACK_MS, `took ${ms} ms`)
  })

  test('endpoint hangs: TIMEOUT within timeoutMs', TEST_TIMEOUT, async () => {
    em.setAlways('container', { hang: true })
    const { error, ms } = await timed(supplierAt(uniqueUri(), { timeoutMs: 1000 }))
    assertSupplierError(error, 'TIMEOUT')
    assert.equal(error.retryable, true)
    assert.ok(ms >= 900, `gave up too early: ${ms} ms`)
    assert.ok(ms < 1000 + SLACK_MS, `took ${ms} ms`)
    assert.ok(em.count('container') >= 1)
  })

  test('answer delayed past timeoutMs: TIMEOUT within timeoutMs', TEST_TIMEOUT, async () => {
    em.setAlways('container', { delayMs: 10_000 })
    const { error, ms } = await timed(supplierAt(uniqueUri(), { timeoutMs: 800 }))
    assertSupplierError(error, 'TIMEOUT')
    assert.ok(ms < 800 + SLACK_MS, `took ${ms} ms`)
  })

  test('a short delay within timeoutMs is fine', TEST_TIMEOUT, async () => {
    em.fault('container', { delayMs: 200 })
    const { value, ms } = await timed(supplierAt(uniqueUri(), { timeoutMs: 3000 }))
    assertIssued(value)
    assert.ok(ms >= 190, `answered before the delay: ${ms} ms`)
  })

  test('connection reset: an error with a code, retried at most 3 times', TEST_TIMEOUT, async () => {
    em.setAlways('container', { reset: true })
    const { error, ms } = await timed(supplierAt(uniqueUri(), { timeoutMs: 2000 }))
    assertSupplierError(error, 'CREDENTIALS_ENDPOINT_ERROR')
    assert.equal(error.retryable, true)
    const n = em.count('container')
    assert.ok(n >= 1 && n <= 3, `${n} requests`)
    assert.ok(ms < 2000 + SLACK_MS, `took ${ms} ms`)
  })
})

describe('configuration refused before any request', () => {
  test('an http FULL_URI host that is not loopback or a container address: CONFIG_INVALID, nothing sent', TEST_TIMEOUT, async () => {
    // 0.0.0.0 reaches this host on Linux, so a request that slipped past validation would show up
    // in the emulator's log. Checked first: if it fails, the 10.0.0.1 case below is never tried.
    const port = new URL(em.url).port
    const local = await rejection(supplierAt(`http://0.0.0.0:${port}/v1/credentials`, { timeoutMs: 1000 }).getAwsSecurityCredentials())
    assertSupplierError(local, 'CONFIG_INVALID')
    assert.equal(local.retryable, false)
    assert.equal(em.requests.length, 0, 'a request reached the emulator')
    const started = performance.now()
    const remote = await rejection(supplierAt('http://10.0.0.1/v1/credentials', { timeoutMs: 1000 }).getAwsSecurityCredentials())
    assertSupplierError(remote, 'CONFIG_INVALID')
    assert.match(remote.message, /not allowed/)
    assert.ok(performance.now() - started < 500, 'refused without trying to connect')
  })

  test('a token file with "\\r\\nX: y" inside: CONFIG_INVALID, nothing sent', TEST_TIMEOUT, async () => {
    const file = join(dir, 'injected-token')
    writeFileSync(file, 'pod-token\r\nX: y\n')
    const error = await rejection(supplierAt(uniqueUri(), {}, { AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: file }).getAwsSecurityCredentials())
    assertSupplierError(error, 'CONFIG_INVALID')
    assert.equal(error.retryable, false)
    assert.equal(em.requests.length, 0)
  })

  test('a missing token file: CONFIG_INVALID, nothing sent', TEST_TIMEOUT, async () => {
    const error = await rejection(supplierAt(uniqueUri(), {}, { AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: join(dir, 'no-such-file') }).getAwsSecurityCredentials())
    assertSupplierError(error, 'CONFIG_INVALID')
    assert.equal(em.requests.length, 0)
  })

  const badOptions = [{ region: 'not a region' }, { refreshMarginSeconds: -1 }, { refreshMarginSeconds: 3601 }, { refreshMarginSeconds: Number.NaN }, { timeoutMs: 0 }, { timeoutMs: 300_001 }]
  for (const options of badOptions) {
    test(`constructor throws CONFIG_INVALID for ${JSON.stringify(options, (k, v) => (Number.isNaN(v) ? 'NaN' : v))}`, () => {
      let thrown
      try {
        supplierAt(uniqueUri(), options)
      } catch (err) {
        thrown = err
      }
      assert.ok(thrown, 'the constructor did not throw')
      assertSupplierError(thrown, 'CONFIG_INVALID')
      assert.equal(thrown.retryable, false)
      assert.match(thrown.message, /options\./)
    })
  }

  test('valid edge options are accepted', () => {
    for (const options of [{ region: 'US-EAST-1' }, { refreshMarginSeconds: 0 }, { refreshMarginSeconds: 3600 }, { timeoutMs: 1 }, { timeoutMs: 300_000 }, {}, undefined, null]) {
      assert.doesNotThrow(() => supplierAt(uniqueUri(), options), JSON.stringify(options))
    }
  })
})

describe('caching', () => {
  test('a failure is never cached: fail once, the next call succeeds', TEST_TIMEOUT, async () => {
    em.fault('container', { status: 403 })
    const uri = uniqueUri()
    const supplier = supplierAt(uri)
    assertSupplierError(await rejection(supplier.getAwsSecurityCredentials()), 'CREDENTIALS_ENDPOINT_ERROR')
    const creds = await supplier.getAwsSecurityCredentials()
    assertIssued(creds)
    assert.equal(em.count('container'), 2)
    // Another instance in the same environment now shares the cached success.
    assert.deepEqual(await supplierAt(uri).getAwsSecurityCredentials(), creds)
    assert.equal(em.count('container'), 2)
  })

  test('1000 concurrent cold calls on one instance plus 200 over four more: one request, identical results', TEST_TIMEOUT, async () => {
    const uri = uniqueUri()
    em.fault('container', { delayMs: 100 }) // keeps the one fetch in flight while every call arrives
    const suppliers = Array.from({ length: 5 }, () => supplierAt(uri))
    // 1000 calls on one instance (the JS memo) plus 50 on each other instance (the native single flight).
    const calls = [
      ...Array.from({ length: 1000 }, () => suppliers[0].getAwsSecurityCredentials()),
      ...suppliers.slice(1).flatMap((s) => Array.from({ length: 50 }, () => s.getAwsSecurityCredentials())),
    ]
    const results = await Promise.all(calls)
    assert.equal(results.length, 1200)
    assert.equal(em.count('container'), 1)
    assertIssued(results[0])
    for (const r of results) assert.deepEqual(r, results[0])
    // Cached afterwards: more calls, old and new instances, no request.
    const later = await Promise.all([...suppliers, supplierAt(uri)].flatMap((s) => [s.getAwsSecurityCredentials(), s.getAwsSecurityCredentials()]))
    for (const r of later) assert.deepEqual(r, results[0])
    assert.equal(em.count('container'), 1)
  })

  test('stale-while-valid: a failed refresh serves the still-valid credentials, then recovers', TEST_TIMEOUT, async () => {
    em.config.credentialsTtlMs = 4000
    const supplier = supplierAt(uniqueUri(), { refreshMarginSeconds: 3, timeoutMs: 2000 })
    const first = await supplier.getAwsSecurityCredentials()
    assertIssued(first)
    const expiresAt = em.issued.get(first.accessKeyId).expiresAt
    em.setAlways('container', { status: 503 })

    // Refresh due within ~1 s: poll until the supplier has tried (and failed) to refresh.
    const served = []
    await pollUntil(
      async () => {
        served.push(await supplier.getAwsSecurityCredentials())
        return em.count('container') > 1
      },
      { timeoutMs: 10_000, what: 'a refresh attempt' },
    )
    assert.ok(Date.now() < expiresAt, 'the refresh must have happened before expiry for this test to mean anything')
    for (const c of served) assert.deepEqual(c, first, 'the failed refresh served the still-valid credentials')
    assert.ok(em.requests.slice(1).every((r) => r.status === 503))

    // Recovery: a later call gets new credentials.
    em.setAlways('container', null)
    const fresh = await pollUntil(
      async () => {
        const c = await supplier.getAwsSecurityCredentials()
        if (c.accessKeyId === first.accessKeyId) assert.deepEqual(c, first)
        return c.accessKeyId !== first.accessKeyId && c
      },
      { timeoutMs: 10_000, what: 'refreshed credentials after recovery' },
    )
    assertIssued(fresh)
    assert.equal(em.requests.at(-1).status, 200)
  })

  test('8 worker_threads, each with its own supplier: one container request in total', TEST_TIMEOUT, async () => {
    process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = uniqueUri()
    em.fault('container', { delayMs: 100 })
    const body = `
      const { ContainerAwsCredentialsSupplier } = require(workerData.index)
      const supplier = new ContainerAwsCredentialsSupplier()
      return async () => {
        const c = await supplier.getAwsSecurityCredentials()
        return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, token: c.token }
      }
    `
    const creds = await inWorkers(8, body, { index: INDEX })
    for (const c of creds) assert.equal(c.error, undefined, JSON.stringify(c.error))
    assertIssued(creds[0])
    for (const c of creds) assert.deepEqual(c, creds[0])
    assert.equal(em.count('container'), 1)
  })
})

// ---------------------------------------------------------------------------------------------
// Issue 18, defect 5: a file read that never finishes (a FIFO with no writer here; a hung NFS or
// EFS mount in production) held a runtime thread and the shared load with it, and later callers
// waited past their timeoutMs.

describe('a file that never answers', () => {
  test('fromCredentialConfig(path) of a FIFO with no writer throws TIMEOUT within timeoutMs', TEST_TIMEOUT, () => {
    const { GoogleTokenFetcher } = createRequire(import.meta.url)(INDEX)
    const file = fifo('wif.json')
    try {
      const started = performance.now()
      assert.throws(() => GoogleTokenFetcher.fromCredentialConfig(file.path, { timeoutMs: 1000 }), (e) => e.code === 'TIMEOUT' && e.message.includes(file.path))
      assert.ok(performance.now() - started < 1000 + SLACK_MS)
    } finally {
      file.release()
    }
  })

  /** A FIFO in the test directory; `release()` lets every reader blocked in open() go (EOF). */
  function fifo(name, path = join(dir, `${++seq}-${name}`)) {
    const made = spawnSync('mkfifo', [path])
    assert.equal(made.status, 0, 'mkfifo failed')
    return { path, release: () => closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK)) }
  }

  async function timed(promise) {
    const started = performance.now()
    const outcome = await promise.then((value) => ({ value }), (error) => ({ error }))
    return { ...outcome, ms: performance.now() - started }
  }

  test('AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE is a FIFO with no writer: every call settles within timeoutMs; another configuration goes on', TEST_TIMEOUT, async () => {
    const token = fifo('token')
    try {
      const stuck = supplierAt(uniqueUri(), { timeoutMs: 1000 }, { AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: token.path })
      const first = await timed(stuck.getAwsSecurityCredentials())
      assertSupplierError(first.error, 'TIMEOUT')
      assert.ok(first.ms < 1000 + SLACK_MS, `${first.ms} ms`)
      assert.match(first.error.message, /AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE/)
      // Later callers of the same configuration: bounded too, together and one after another.
      const again = await Promise.all([timed(stuck.getAwsSecurityCredentials()), timed(stuck.getAwsSecurityCredentials())])
      for (const r of again) {
        assertSupplierError(r.error, 'TIMEOUT')
        assert.ok(r.ms < 1000 + SLACK_MS, `${r.ms} ms`)
      }
      // Another configuration is not held up by the stuck read.
      const other = await timed(supplierAt(uniqueUri(), { timeoutMs: 5000 }).getAwsSecurityCredentials())
      assert.equal(other.error, undefined, other.error?.message)
      assert.ok(other.ms < 1000, `${other.ms} ms`)
      assert.equal(em.count('container'), 1, 'the stuck configuration sent nothing')
    } finally {
      token.release()
    }
  })

  test('AWS_CONFIG_FILE is a FIFO with no writer: the constructor and then the call each settle within timeoutMs; the call is TIMEOUT naming the file', TEST_TIMEOUT, async () => {
    const path = join(dir, `${++seq}-config`)
    const config = fifo('config', path)
    const saved = { AWS_CONFIG_FILE: process.env.AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE: process.env.AWS_SHARED_CREDENTIALS_FILE }
    const started = performance.now()
    const supplier = supplierAt(uniqueUri(), { timeoutMs: 1000, region: 'us-east-1' }, { AWS_CONFIG_FILE: path, AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none') })
    const built = performance.now() - started
    Object.assign(process.env, saved)
    assert.ok(built < 1000 + SLACK_MS, `the constructor took ${built} ms`)
    try {
      const r = await timed(supplier.getAwsSecurityCredentials())
      assertSupplierError(r.error, 'TIMEOUT')
      assert.ok(r.ms < 1000 + SLACK_MS, `${r.ms} ms`)
      assert.ok(r.error.message.includes(config.path), r.error.message)
    } finally {
      config.release()
    }
  })
})
