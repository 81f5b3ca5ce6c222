// Shared helpers for the supplier test files (environments, faults, secrets, typings).
//
// Nothing here connects anywhere by itself: child processes are started with the environment the
// caller passes (always built with hermeticEnv()), and free ports are found by binding 127.0.0.1.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import net, { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { emulatorSignature } from './emulator/google.mjs'
import { decodeSubjectToken } from './emulator/sigv4-oracle.mjs'
import { collectChild } from './netns.mjs'

export const here = (path) => fileURLToPath(new URL(path, import.meta.url))

/** Every `code` of the package's errors: the binding's one list (ErrorKind in src/error.rs). */
export const ERROR_CODES = createRequire(import.meta.url)('../lib/native.js').binding.__errorCodes()
const codes = (...names) => {
  for (const name of names) assert.ok(ERROR_CODES.includes(name), `${name} is not one of the binding's codes`)
  return names
}

/** The `code` values documented in index.d.ts for the supplier (each one of ERROR_CODES). */
export const CREDENTIAL_CODES = codes('CREDENTIALS_NOT_FOUND', 'CREDENTIALS_ENDPOINT_ERROR', 'INVALID_CREDENTIALS_RESPONSE', 'CREDENTIALS_EXPIRED', 'TIMEOUT', 'CONFIG_INVALID')
export const REGION_CODES = codes('REGION_NOT_FOUND', 'TIMEOUT')
export const SUPPLIER_CODES = [...new Set([...CREDENTIAL_CODES, ...REGION_CODES])]

export const AWS4_REQUEST = 'urn:ietf:params:aws:token-type:aws4_request'
export const QUERY = 'SELECT greeting, principal, n FROM emulator'

/**
 * Assert `err` is a supplier error: an Error with a documented string `code`, a boolean
 * `retryable` and a non-empty message; and, when given, the expected code. Returns err.
 */
export function assertSupplierError(err, code, { codes = SUPPLIER_CODES } = {}) {
  assert.ok(err instanceof Error, `not an Error: ${String(err)}`)
  assert.equal(typeof err.code, 'string', 'err.code is not a string')
  assert.ok(codes.includes(err.code), `undocumented code ${err.code}`)
  assert.equal(typeof err.retryable, 'boolean', 'err.retryable is not a boolean')
  assert.equal(typeof err.message, 'string')
  assert.ok(err.message.length > 0, 'empty message')
  if (code !== undefined) assert.equal(err.code, code, err.message)
  return err
}

/** Await a promise that must reject; returns the rejection reason. */
export async function rejection(promise) {
  let settled = false
  try {
    await promise
    settled = true
  } catch (err) {
    return err
  }
  assert.fail(`expected a rejection, got a value (settled=${settled})`)
}

/** The plain fields of an error that a child process may print (never the message). */
export function errorFields(err) {
  return {
    isError: err instanceof Error,
    code: err?.code,
    retryable: err?.retryable,
    status: err?.status,
    messageType: typeof err?.message,
  }
}

/** A 127.0.0.1 port with nothing listening on it (bound, then released). */
export function unusedPort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** A promise resolved after `ms` (for bounded polling loops only, never as synchronisation). */
export const tick = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Poll `probe()` every `intervalMs` until it returns a truthy value; fail after `timeoutMs`.
 * Returns the truthy value.
 */
export async function pollUntil(probe, { timeoutMs = 15_000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value) return value
    if (performance.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await tick(intervalMs)
  }
}

/** The region of the sts.<region>.amazonaws.com URL inside an STS request's subject token. */
export function subjectTokenRegion(stsBody) {
  const token = new URLSearchParams(stsBody).get('subject_token')
  const { url } = decodeSubjectToken(token)
  return /^https:\/\/sts\.([a-z0-9-]+)\.amazonaws\.com/.exec(url)?.[1] ?? null
}

/** A JSON-safe summary of the emulator's request log (used in-process and by netns fixtures). */
export function summariseRequests(requests) {
  return requests.map((r) => ({
    route: r.route,
    method: r.method,
    path: r.path,
    listener: r.listener,
    status: r.status,
    authorization: r.route === 'container' ? (r.headers.authorization ?? null) : undefined,
    verdict: r.verdict ? { ok: r.verdict.ok, reason: r.verdict.reason, region: r.verdict.region, accessKeyId: r.verdict.accessKeyId, arn: r.verdict.arn } : undefined,
    subjectTokenRegion: r.route === 'sts' ? subjectTokenRegion(r.body) : undefined,
    awsStsForm: r.route === 'awsSts' ? Object.fromEntries(new URLSearchParams(r.body)) : undefined,
  }))
}

/**
 * Run `command ...args` with exactly `env` (in `cwd`, default this process's); resolves {code, signal, stdout, stderr, timedOut, result}
 * where `result` is the JSON of the last stdout line (or undefined). Killed after timeoutMs.
 */
export function runCommand(command, args, { env, timeoutMs = 30_000, cwd } = {}) {
  assert.ok(env, 'runCommand needs an explicit (hermetic) env')
  const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  return collectChild(child, timeoutMs).then((run) => ({ ...run, result: lastJsonLine(run.stdout) }))
}

/** runCommand with this process's Node: `node script ...args`. */
export function runNode(script, { args = [], ...options } = {}) {
  return runCommand(process.execPath, [script, ...args], options)
}

/** Parse the last non-empty line of `text` as JSON (undefined if none or not JSON). */
export function lastJsonLine(text) {
  const line = text.trim().split('\n').at(-1)
  try {
    return line ? JSON.parse(line) : undefined
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// GoogleTokenFetcher and the doctor (fetcher.test.mjs, doctor.test.mjs)

/** Every `code` a GoogleTokenFetcher error may carry (index.d.ts): all of them but INTERNAL (a bug). */
export const FETCHER_CODES = ERROR_CODES.filter((code) => code !== 'INTERNAL')

export const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform'

/** The IAM Credentials generateAccessToken URL of `serviceAccount` on the emulator at `baseUrl`. */
export const impersonationUrl = (baseUrl, serviceAccount) => `${baseUrl}/v1/projects/-/serviceAccounts/${serviceAccount}:generateAccessToken`

/**
 * google-auth-library's AwsClient (of the module `gal`) with `supplier` (e.g. a
 * ContainerAwsCredentialsSupplier), impersonating `serviceAccount`, its STS and IAM Credentials on
 * the emulator at `baseUrl`.
 */
export function supplierAwsClient(gal, { baseUrl, audience, serviceAccount, supplier }) {
  return new gal.AwsClient({
    audience,
    subject_token_type: AWS4_REQUEST,
    token_url: `${baseUrl}/v1/token`,
    service_account_impersonation_url: impersonationUrl(baseUrl, serviceAccount),
    aws_security_credentials_supplier: supplier,
  })
}

/**
 * The credential configuration `gcloud iam workload-identity-pools create-cred-config --aws
 * --service-account=… --output-file=…` writes, with its Google endpoints pointed at the emulator at
 * `baseUrl`. The EC2 credential_source URLs point at the emulator's IMDS routes too, so a test can
 * prove they are never contacted (em.count('imds') === 0) without any packet leaving loopback.
 * `overrides` are merged on top (a value of undefined removes the key).
 */
export function gcloudCredConfig(baseUrl, { audience, serviceAccount, ...overrides } = {}) {
  const config = {
    universe_domain: 'googleapis.com',
    type: 'external_account',
    audience,
    subject_token_type: AWS4_REQUEST,
    token_url: `${baseUrl}/v1/token`,
    credential_source: {
      environment_id: 'aws1',
      region_url: `${baseUrl}/latest/meta-data/placement/availability-zone`,
      url: `${baseUrl}/latest/meta-data/iam/security-credentials`,
      regional_cred_verification_url: 'https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15',
      imdsv2_session_token_url: `${baseUrl}/latest/api/token`,
    },
    service_account_impersonation_url: impersonationUrl(baseUrl, serviceAccount),
    service_account_impersonation: { token_lifetime_seconds: 3600 },
  }
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete config[key]
    else config[key] = value
  }
  return config
}

/**
 * Run `count` worker_threads of `body` and release them together. `body` is CommonJS source run in
 * each worker with `workerData` in scope; it sets up (construct a supplier, say) and returns an async
 * function, called once every worker has set up; what that function resolves to (or
 * {error: {code, message}}) is collected. Resolves with the results in worker order; the workers
 * are terminated either way.
 */
export async function inWorkers(count, body, workerData) {
  const source = `
    const { parentPort, workerData } = require('node:worker_threads')
    const go = (() => { ${body} })()
    parentPort.once('message', async () => {
      try {
        parentPort.postMessage({ value: await go() })
      } catch (e) {
        parentPort.postMessage({ value: { error: { code: e.code, message: e.message } } })
      }
    })
    parentPort.postMessage('ready')
  `
  const workers = Array.from({ length: count }, () => new Worker(source, { eval: true, workerData, env: process.env }))
  const message = (w) =>
    new Promise((resolve, reject) => {
      w.once('message', resolve)
      w.once('error', reject)
    })
  try {
    await Promise.all(workers.map(message)) // every worker has set up
    const results = Promise.all(workers.map(message))
    for (const w of workers) w.postMessage('go')
    return (await results).map((m) => m.value)
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
  }
}

// ---------------------------------------------------------------------------------------------
// Client libraries in this process (authclient.test.mjs, nested.test.mjs)

const isLoopback = (host) => host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || host === '[::1]'

/**
 * Watch every TCP connection this process opens from JavaScript (net and tls, hence http, https,
 * fetch, node-fetch and gaxios alike; not the addon's native connections): each destination is
 * recorded as `host:port` (clear the arrays to start afresh), and one that is not loopback is refused
 * before any name is resolved or packet sent (the socket is destroyed with an error). Returns
 * { destinations, refused, restore() }.
 */
export function loopbackOnly() {
  const original = net.Socket.prototype.connect
  const destinations = []
  const refused = []
  net.Socket.prototype.connect = function connect(...args) {
    // net.connect() hands its normalized [options, callback] over as one array.
    const first = Array.isArray(args[0]) ? args[0][0] : args[0]
    const options = first !== null && typeof first === 'object' ? first : { port: first, host: typeof args[1] === 'string' ? args[1] : undefined }
    if (!options.path) {
      const destination = `${options.host ?? 'localhost'}:${Number(options.port)}`
      destinations.push(destination)
      if (!isLoopback(options.host ?? 'localhost')) {
        refused.push(destination)
        process.nextTick(() => this.destroy(new Error(`the test refused a connection to ${destination}: not loopback`)))
        return this
      }
    }
    return original.apply(this, args)
  }
  return { destinations, refused, restore: () => void (net.Socket.prototype.connect = original) }
}

/** @google-cloud/storage getSignedUrl() (v4, read, 10 minutes) of reports/2026/daily.csv, signed through the emulator's signBlob. */
export async function signedUrlV4(storage, em) {
  const [url] = await storage.bucket('reports').file('2026/daily.csv').getSignedUrl({
    version: 'v4',
    action: 'read',
    expires: Date.now() + 600_000,
    signingEndpoint: `${em.url}/v1/projects/-/serviceAccounts/`,
  })
  return url
}

/**
 * Assert that `url` (from signedUrlV4) was signed by the emulator's signBlob as `serviceAccount`,
 * the one signBlob request carrying `token` (the service account's own access token).
 */
export function assertSignedAs(em, url, { serviceAccount, token }) {
  const signed = new URL(url)
  assert.equal(signed.pathname, '/reports/2026/daily.csv')
  assert.match(signed.searchParams.get('X-Goog-Credential'), new RegExp(`^${serviceAccount.replace(/[.@]/g, '\\$&')}/\\d{8}/auto/storage/goog4_request$`))
  const requests = em.requests.filter((r) => r.route === 'iamSignBlob')
  assert.equal(requests.length, 1)
  assert.equal(requests[0].path, `/v1/projects/-/serviceAccounts/${serviceAccount}:signBlob`)
  assert.equal(requests[0].headers.authorization, `Bearer ${token}`, "the service account's own token")
  const payload = Buffer.from(JSON.parse(requests[0].body).payload, 'base64')
  assert.match(payload.toString(), /^GOOG4-RSA-SHA256\n/)
  assert.equal(signed.searchParams.get('X-Goog-Signature'), Buffer.from(emulatorSignature(em, payload), 'base64').toString('hex'))
}
