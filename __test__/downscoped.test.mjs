// google-auth-library's DownscopedClient (Credential Access Boundaries) on top of authClient()
// (issue 20, section 4), against the emulator.
//
// DownscopedClient sends its token exchange to https://sts.googleapis.com/v1/token (the universe's
// STS; it has no setting for another URL), so the client runs in a child process
// (fixtures/downscoped-child.mjs) with HTTPS_PROXY set to a loopback proxy (support/proxy.mjs) that
// maps sts.googleapis.com:443 to the emulator's TLS front, whose certificate a test CA signs
// (NODE_EXTRA_CA_CERTS). The proxy never resolves a name; everything else is on NO_PROXY loopback;
// and the child records every connection it opens from JavaScript (loopbackOnly), refusing any that
// is not loopback.
//
// What holds: one downscoping request, exactly what Google STS documents (token-exchange, the
// source access token as subject_token of type access_token, the boundary as URL-encoded JSON in
// `options`), on the service account's token from the native fetcher (one AWS exchange and one
// impersonation, shared with the fetcher); the downscoped token is cached by the client, expires
// with its source, and reads Cloud Storage only within the boundary (the emulator's objects.get
// enforces it; the source token reads everywhere, as the control). With @google-cloud/storage in the
// stack (Node 22, google-auth-library 11), Storage given the DownscopedClient reads too.
//
// Runs on the default stack (google-auth-library 10) and, in .ci/run, on google-auth-library 11 /
// Node 22 (stack.mjs). Needs the openssl command (skipped without, with the reason).
//
// Run: node --test __test__/downscoped.test.mjs

import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { DEFAULT_CONFIG, hermeticEnv, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { galVersion, stackPaths } from './stack.mjs'
import { makePki, pkiUnavailableReason } from './support/pki.mjs'
import { startProxy } from './support/proxy.mjs'
import { here, impersonationUrl, runNode } from './support.mjs'

makeProcessHermetic()

const SA = DEFAULT_CONFIG.serviceAccount
const STS = 'sts.googleapis.com:443'
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token'
const BOUNDARY = {
  accessBoundary: {
    accessBoundaryRules: [
      {
        availableResource: '//storage.googleapis.com/projects/_/buckets/reports',
        availablePermissions: ['inRole:roles/storage.objectViewer'],
        availabilityCondition: { title: 'daily reports only', expression: "resource.name.startsWith('projects/_/buckets/reports/objects/daily/')" },
      },
    ],
  },
}
const ALLOWED = { bucket: 'reports', object: 'daily/2026-05-01.csv' }
const OTHER_PREFIX = { bucket: 'reports', object: 'monthly/2026-04.csv' }
const OTHER_BUCKET = { bucket: 'payroll', object: 'daily/2026-05-01.csv' }

/** @google-cloud/storage from the stack, when it has one (the Node 22 / google-auth-library 11 stack). */
const storagePath = (() => {
  if (!process.env.WIF_TEST_DEPS_DIR) return null
  try {
    return createRequire(join(process.env.WIF_TEST_DEPS_DIR, '..', 'package.json')).resolve('@google-cloud/storage')
  } catch {
    return null
  }
})()

describe(`DownscopedClient on authClient(), google-auth-library ${galVersion}`, { skip: pkiUnavailableReason() ?? false }, () => {
  let pki
  let em
  let proxy

  before(async () => {
    pki = makePki({ hostnames: ['sts.googleapis.com'] })
    em = await startEmulator({ listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, tls: { key: pki.keyPem, cert: pki.certPem }, hostname: 'sts.googleapis.com' }] })
    proxy = await startProxy({ routes: { [STS]: { host: '127.0.0.1', port: Number(new URL(em.urls[1]).port) } } })
  })
  after(async () => {
    await proxy?.close()
    await em?.close()
    if (pki) rmSync(pki.dir, { recursive: true, force: true })
  })

  test('one downscoping exchange, as Google STS documents it; the token reads Cloud Storage only within its boundary', { timeout: 60_000 }, async () => {
    const plan = {
      index: here('../index.js'),
      gal: stackPaths.googleAuthLibrary,
      storage: storagePath,
      options: { audience: DEFAULT_CONFIG.audience, tokenUrl: `${em.url}/v1/token`, serviceAccountImpersonationUrl: impersonationUrl(em.url, SA) },
      boundary: BOUNDARY,
      objects: [ALLOWED, OTHER_PREFIX, OTHER_BUCKET],
      storageApi: em.url,
    }
    const env = hermeticEnv({
      WIF_DOWNSCOPED: JSON.stringify(plan),
      NODE_EXTRA_CA_CERTS: pki.caPath,
      HTTPS_PROXY: proxy.url,
      NO_PROXY: '127.0.0.1,localhost',
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v2/credentials/downscoped`,
      AWS_REGION: 'us-east-1',
    })
    const run = await runNode(here('fixtures/downscoped-child.mjs'), { env, timeoutMs: 50_000 })
    const result = run.result
    assert.ok(result && !result.fatal, `${run.stdout}\n${run.stderr}`)

    // Nothing left loopback: the child connected to the proxy and the emulator only, and the proxy
    // opened the one tunnel it maps (sts.googleapis.com) to the emulator's TLS front.
    const allowed = [new URL(proxy.url).host, new URL(em.url).host]
    assert.deepEqual([...new Set(result.destinations)].filter((d) => !allowed.includes(d)), [], 'a connection elsewhere')
    assert.deepEqual(proxy.counts(), { tunnels: { [STS]: 1 }, requests: {}, denied: {}, unrouted: {}, confused: 0, total: 1 })

    // The source: the service account's token from the native fetcher (one AWS exchange, one impersonation).
    assert.deepEqual([em.count('container'), em.count('iam')], [1, 1])
    assert.equal(em.googleTokens.get(result.source.token).kind, 'sa')

    // The downscoping request, as the emulator received it on its TLS front.
    const sts = em.requests.filter((r) => r.route === 'sts')
    assert.equal(sts.length, 2, 'the AWS exchange and one downscoping')
    const [request] = sts.filter((r) => r.listener === `127.0.0.1:${new URL(em.urls[1]).port}`)
    assert.ok(request, 'the downscoping reached the TLS front')
    assert.equal(request.path, '/v1/token')
    assert.equal(request.headers.host, 'sts.googleapis.com')
    assert.match(request.headers['content-type'], /^application\/x-www-form-urlencoded/)
    const form = new URLSearchParams(request.body)
    assert.deepEqual([...form.keys()].sort(), ['grant_type', 'options', 'requested_token_type', 'subject_token', 'subject_token_type'])
    assert.equal(form.get('grant_type'), 'urn:ietf:params:oauth:grant-type:token-exchange')
    assert.equal(form.get('requested_token_type'), ACCESS_TOKEN)
    assert.equal(form.get('subject_token_type'), ACCESS_TOKEN)
    assert.equal(form.get('subject_token'), result.source.token, "the service account's token from authClient()")
    assert.ok(request.body.split('&').includes(new URLSearchParams({ options: JSON.stringify(BOUNDARY) }).toString()), 'options: the boundary as form-encoded JSON')
    assert.deepEqual(JSON.parse(form.get('options')), BOUNDARY)
    assert.deepEqual(request.verdict, { ok: true, reason: 'downscoped', principal: SA })

    // The downscoped token: the emulator's record, cached by the client, expiring with its source.
    const record = em.googleTokens.get(result.token)
    assert.equal(record.kind, 'downscoped')
    assert.equal(record.principal, SA)
    assert.deepEqual(record.accessBoundary, BOUNDARY.accessBoundary)
    assert.equal(result.again, result.token, 'cached by the DownscopedClient')
    assert.equal(result.tokenEvents, 1)
    assert.ok(Math.abs(result.expirationTime - result.source.expiresAt) <= 2_000, `expires ${result.expirationTime}, its source ${result.source.expiresAt}`)

    // Reads: within the boundary only, each with the downscoped token.
    assert.deepEqual(result.reads, [{ status: 200, name: ALLOWED.object }, { status: 403 }, { status: 403 }])
    const reads = em.requests.filter((r) => r.route === 'storage')
    assert.deepEqual(reads.map((r) => [r.storage.bucket, r.storage.object, r.status]).slice(0, 3), [
      [ALLOWED.bucket, ALLOWED.object, 200],
      [OTHER_PREFIX.bucket, OTHER_PREFIX.object, 403],
      [OTHER_BUCKET.bucket, OTHER_BUCKET.object, 403],
    ])
    for (const r of reads) assert.equal(r.headers.authorization, `Bearer ${result.token}`)
    if (storagePath) {
      assert.deepEqual(result.storageRead, { name: ALLOWED.object, bucket: ALLOWED.bucket })
      assert.equal(reads.length, 4)
    } else assert.equal(reads.length, 3)

    // The control: the source token itself reads outside the boundary (the boundary is what denies).
    for (const { bucket, object } of [OTHER_PREFIX, OTHER_BUCKET]) {
      const res = await fetch(`${em.url}/storage/v1/b/${bucket}/o/${encodeURIComponent(object)}`, { headers: { authorization: `Bearer ${result.source.token}` } })
      assert.equal(res.status, 200)
    }
    assert.equal(em.count('sts'), 2, 'no other exchange')
  })
})
