// Native HTTPS trusts what Node trusts (issue 10): Node's root set plus NODE_EXTRA_CA_CERTS, plus the
// system store when it has certificates. `node:*-slim` images have an empty /etc/ssl/certs; this
// suite recreates that with a private mount namespace (`unshare -m`) whose trust store locations
// are empty tmpfs mounts, checks that the store really is empty, and runs real HTTPS flows against
// the emulator behind a TLS front whose certificate comes from a private CA:
//   * the CA given only through NODE_EXTRA_CA_CERTS: IRSA (aws-config's AWS STS call on our HTTPS
//     client), the native fetcher (Google STS + IAM), and google-auth-library's AwsClient;
//   * the raw binding with no root set handed over: a coded error with a hint, not a panic, and
//     the next call works once roots are given (nothing cached or poisoned);
//   * the CA installed only in the (namespace's) system store, beside an unparsable certificate.
//
// Run: node --test __test__/trust.test.mjs (needs root for unshare -m, and the openssl command)

import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { DEFAULT_CONFIG, hermeticEnv, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { collectChild } from './netns.mjs'
import { here, lastJsonLine } from './support.mjs'
import { makePki, pkiUnavailableReason } from './support/pki.mjs'

makeProcessHermetic()

const FIXTURE = here('fixtures/trust-child.mjs')
const ROLE_ARN = 'arn:aws:iam::123456789012:role/irsa-role'
const TOKEN = 'projected-sa-jwt-TRUST'

function mountNsUnavailableReason() {
  if (process.platform !== 'linux') return 'mount namespaces need Linux'
  if (spawnSync('unshare', ['-m', 'true'], { stdio: 'ignore' }).status !== 0) return '`unshare -m` failed (needs root)'
  return pkiUnavailableReason()
}
const skip = mountNsUnavailableReason() ?? false

// Empty every trust store location rustls-native-certs and OpenSSL look at, then (optionally)
// install a CA bundle and an unparsable certificate as the system store.
const SETUP = `
for d in /etc/ssl /etc/pki /etc/security /opt/etc/ssl; do
  if [ -d "$d" ]; then mount -t tmpfs -o size=1m tmpfs "$d" || exit 97; fi
done
if [ -n "$WIF_SYSTEM_CA" ]; then
  mkdir -p /etc/ssl/certs && cp "$WIF_SYSTEM_CA" /etc/ssl/certs/ca-certificates.crt || exit 98
  printf -- '-----BEGIN CERTIFICATE-----\\nMIIBbroken\\n-----END CERTIFICATE-----\\n' > /etc/ssl/certs/broken.pem
fi
exec "$@"`

function runInMountNs(plan, vars) {
  const env = hermeticEnv({ ...vars, WIF_TRUST: JSON.stringify(plan) })
  for (const v of ['SSL_CERT_FILE', 'SSL_CERT_DIR', 'NODE_EXTRA_CA_CERTS']) if (!(v in vars)) delete env[v]
  const child = spawn('unshare', ['-m', '--', 'sh', '-c', SETUP, 'trust', process.execPath, FIXTURE], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  return collectChild(child, 40_000).then((run) => {
    assert.equal(run.timedOut, false, `timed out\n${run.stderr}`)
    assert.equal(run.code, 0, run.stderr)
    const result = lastJsonLine(run.stdout)
    assert.ok(result, `no JSON result\n${run.stdout}\n${run.stderr}`)
    return result
  })
}

describe('native HTTPS trusts what Node trusts', { skip }, () => {
  let pki
  let em
  let url
  let tokenFile
  const key = { accessKeyId: 'AKIATRUSTSTATICKEY01', secretAccessKey: 'trust/static/secret/EXAMPLE0000000000000000', token: 'trust-session-token' }

  before(async () => {
    pki = makePki()
    em = await startEmulator({ listen: [{ host: '127.0.0.1', port: 0, tls: { key: pki.keyPem, cert: pki.certPem } }] })
    url = em.url
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/)
    em.config = { ...DEFAULT_CONFIG, webIdentityToken: TOKEN }
    em.registerAwsKey({ ...key, arn: 'arn:aws:sts::123456789012:assumed-role/env-role/trust' })
    tokenFile = join(pki.dir, 'token')
    writeFileSync(tokenFile, TOKEN)
  })
  after(async () => {
    await em?.close()
    if (pki) rmSync(pki.dir, { recursive: true, force: true })
  })

  const plan = (steps) => ({ steps, url, audience: DEFAULT_CONFIG.audience, serviceAccount: DEFAULT_CONFIG.serviceAccount, caPath: pki.caPath })
  const irsaVars = () => ({ AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_ROLE_ARN: ROLE_ARN, AWS_ENDPOINT_URL_STS: `${url}/aws-sts`, AWS_REGION: 'us-east-1' })
  const keyVars = () => ({ AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey, AWS_SESSION_TOKEN: key.token })

  test('empty system store, CA only in NODE_EXTRA_CA_CERTS: IRSA, the fetcher and AwsClient all work', { timeout: 60_000 }, async () => {
    em.reset()
    const irsa = await runInMountNs(plan(['emptyStore', 'irsa', 'summary']), { ...irsaVars(), NODE_EXTRA_CA_CERTS: pki.caPath })
    assert.deepEqual(irsa.emptyStore.found, [], 'the namespace must show no system trust store')
    assert.equal(irsa.emptyStore.summary.system, 0, 'the native loader must find no system certificate')
    assert.equal(irsa.emptyStore.summary.node, 0)
    assert.equal(irsa.summary.summary.nodeSetGiven, true)
    assert.ok(irsa.summary.summary.node >= 100, `Node's set: ${irsa.summary.summary.node}`)
    assert.equal(irsa.summary.summary.system, 0)
    assert.equal(irsa.irsa.ok, true, JSON.stringify(irsa.irsa))
    assert.match(irsa.irsa.accessKeyId, /^ASIA/)
    assert.equal(em.count('awsSts'), 1)

    const google = await runInMountNs(plan(['emptyStore', 'fetcher', 'gal']), { ...keyVars(), NODE_EXTRA_CA_CERTS: pki.caPath })
    assert.deepEqual(google.emptyStore.found, [])
    assert.equal(google.fetcher.ok, true, JSON.stringify(google.fetcher))
    assert.equal(google.fetcher.tokenPrefix, 'ya29.sa.')
    assert.equal(google.gal.ok, true, JSON.stringify(google.gal))
    assert.equal(google.gal.tokenPrefix, 'ya29.sa.')
    assert.equal(em.count('sts'), 2, 'one exchange natively, one by google-auth-library')
  })

  test('no root set and an empty store: a coded error with a hint, then the next call works', { timeout: 60_000 }, async () => {
    em.reset()
    const r = await runInMountNs(plan(['emptyStore', 'retryAfterNoTrust']), keyVars())
    assert.deepEqual(r.emptyStore.found, [])
    const { first, second } = r.retryAfterNoTrust
    assert.equal(first.error?.code, 'CONFIG_INVALID', JSON.stringify(first))
    assert.equal(first.error.retryable, false)
    assert.match(first.error.message, /no trusted CA certificate/)
    assert.match(first.error.hint, /NODE_EXTRA_CA_CERTS/)
    assert.equal(first.againCode, 'CONFIG_INVALID', 'the second call fails the same way (no panic, nothing poisoned)')
    assert.equal(second.tokenPrefix, 'ya29.sts', JSON.stringify(second))
  })

  test('the CA only in the system store (beside an unparsable certificate) still works natively', { timeout: 60_000 }, async () => {
    em.reset()
    const r = await runInMountNs(plan(['summary', 'irsa', 'fetcher']), { ...irsaVars(), WIF_SYSTEM_CA: pki.caPath })
    assert.ok(r.summary.summary.system >= 1, JSON.stringify(r.summary))
    assert.equal(r.irsa.ok, true, JSON.stringify(r.irsa))
    assert.equal(r.fetcher.ok, true, JSON.stringify(r.fetcher))
  })
})
