// Proxies end to end (issue 10): native HTTP decides proxies as google-auth-library's gaxios does
// (src/http/proxy.rs). Each run is a child (fixtures/proxy-child.mjs) in a private network and mount
// namespace (`unshare -n -m`): only `lo`, carrying the AWS link-local addresses, so nothing can leave
// the machine; its own /etc/resolv.conf (a nameserver on loopback where none listens) and /etc/hosts.
// In there: the emulator behind a TLS front for sts.googleapis.com, iamcredentials.googleapis.com
// and sts.us-east-1.amazonaws.com (a private CA, given through NODE_EXTRA_CA_CERTS), plain HTTP on
// 169.254.170.2:80, 169.254.170.23:80 and 169.254.169.254:80, and a forward proxy (support/proxy.mjs) per step that
// maps those names to the front and counts its CONNECT tunnels and absolute-form requests.
//
//   * "proxy only" namespace: the hosts file does not know those names, so only the proxy reaches
//     them: the fetcher (HTTPS_PROXY, https_proxy), AwsClient with our supplier (gaxios), IRSA
//     (aws-config's AWS STS call), the ECS (credentials, task metadata), EKS Pod Identity and IMDS
//     endpoints (never proxied), proxy auth (right, wrong, missing and percent-encoded passwords,
//     unusable proxy URLs; the marker passwords in no error text, diagnose() report, debug log or
//     `doctor` output);
//   * "hosts" namespace: /etc/hosts maps the names to 127.0.0.1, where the front also listens on
//     443: NO_PROXY / no_proxy bypass the proxy (suffix, *.suffix, host, origin); a worker_thread
//     with its own env uses its proxy while the main thread (none) connects directly.
//
// A 407 from the proxy and a proxy scheme the client cannot speak (socks5) are configuration errors
// (CONFIG_INVALID, not retryable, not retried).
//
// Run: node --test __test__/proxy.test.mjs (needs root for unshare -n -m, iproute2 and openssl)

import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { hermeticEnv, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { collectChild, LINK_LOCAL_ADDRESSES, netnsUnavailableReason } from './netns.mjs'
import { FETCHER_CODES, here, lastJsonLine } from './support.mjs'
import { makePki, pkiUnavailableReason } from './support/pki.mjs'
import { startProxy } from './support/proxy.mjs'

makeProcessHermetic()

const FIXTURE = here('fixtures/proxy-child.mjs')
const GOOGLE_STS = 'sts.googleapis.com:443'
const GOOGLE_IAM = 'iamcredentials.googleapis.com:443'
const AWS_STS = 'sts.us-east-1.amazonaws.com:443'
const HOSTNAMES = ['sts.googleapis.com', 'iamcredentials.googleapis.com', 'sts.us-east-1.amazonaws.com']
const BOTH_TUNNELS = { [GOOGLE_STS]: 1, [GOOGLE_IAM]: 1 }
const MARKERS = { right: `MARKER-PROXY-PASSWORD-${randomBytes(6).toString('hex')}`, wrong: `MARKER-PROXY-WRONG-${randomBytes(6).toString('hex')}` }

function unavailableReason() {
  const netns = netnsUnavailableReason()
  if (netns) return netns
  if (spawnSync('unshare', ['-n', '-m', '--propagation', 'private', '--', 'mount', '--bind', '/etc/hosts', '/etc/hosts'], { stdio: 'ignore' }).status !== 0)
    return '`unshare -n -m` with a bind mount failed (needs root)'
  return pkiUnavailableReason()
}
const skip = unavailableReason() ?? false

const SETUP = [
  'set -e',
  'ip link set lo up',
  ...LINK_LOCAL_ADDRESSES.map((a) => `ip addr add ${a}/32 dev lo`),
  'mount --bind "$WIF_HOSTS" /etc/hosts',
  'mount --bind "$WIF_RESOLV" /etc/resolv.conf',
  'exec "$@"',
].join('\n')

let pki
let files

/** Run the fixture's `steps` in a fresh namespace; `hosts`: whether /etc/hosts knows the names. */
async function inNamespace(steps, { hosts }) {
  const plan = { steps, pki: { keyPath: files.key, certPath: files.cert }, markers: MARKERS }
  const env = hermeticEnv({ WIF_PROXY: JSON.stringify(plan), NODE_EXTRA_CA_CERTS: pki.caPath, WIF_HOSTS: hosts ? files.hosts : files.noHosts, WIF_RESOLV: files.resolv })
  for (const v of ['SSL_CERT_FILE', 'SSL_CERT_DIR']) delete env[v]
  const child = spawn('unshare', ['-n', '-m', '--propagation', 'private', '--', 'sh', '-c', SETUP, 'proxy-ns', process.execPath, FIXTURE], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const run = await collectChild(child, 45_000)
  const all = `${run.stdout}\n${run.stderr}`
  for (const [name, marker] of Object.entries(MARKERS)) assert.ok(!all.includes(marker), `the ${name} proxy password appears in the child's output (stdout, stderr: the debug log)`)
  assert.equal(run.timedOut, false, `timed out\n${run.stderr}`)
  assert.equal(run.code, 0, run.stderr)
  const result = lastJsonLine(run.stdout)
  assert.ok(result, `no JSON result\n${run.stdout}\n${run.stderr}`)
  return { result, stderr: run.stderr }
}

/** The step succeeded with a token from the emulator's impersonation route. */
function assertToken(step, what) {
  assert.notEqual(step.ok, false, `${what}: ${JSON.stringify(step)}`)
  assert.equal(step.error, undefined, `${what}: ${JSON.stringify(step.error)}`)
  assert.equal(step.tokenPrefix, 'ya29.sa.', `${what}: ${JSON.stringify(step)}`)
}

/** A coded fetcher error whose text, stack, inspect() and JSON hold no marker. */
function assertCodedError(error, what) {
  assert.ok(error, `${what}: expected an error`)
  assert.equal(error.isError, true, what)
  assert.ok(FETCHER_CODES.includes(error.code), `${what}: undocumented code ${error.code}`)
  assert.equal(typeof error.retryable, 'boolean', what)
  assert.deepEqual(error.leakedIn, [], `${what}: a proxy password in ${error.leakedIn}`)
}

describe('proxies, end to end in a private network namespace', { skip }, () => {
  before(() => {
    pki = makePki({ hostnames: HOSTNAMES })
    files = {
      key: join(pki.dir, 'server.key'),
      cert: join(pki.dir, 'server.pem'),
      noHosts: join(pki.dir, 'hosts-none'),
      hosts: join(pki.dir, 'hosts-google'),
      resolv: join(pki.dir, 'resolv.conf'),
    }
    writeFileSync(files.noHosts, '127.0.0.1 localhost\n::1 localhost\n')
    writeFileSync(files.hosts, `127.0.0.1 localhost\n::1 localhost\n${HOSTNAMES.map((h) => `127.0.0.1 ${h}`).join('\n')}\n169.254.170.23 pod-identity.test\n169.254.169.254 imds.test\n`)
    writeFileSync(files.resolv, 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n')
  })
  after(() => {
    if (pki) rmSync(pki.dir, { recursive: true, force: true })
  })

  describe('names only the proxy can resolve', () => {
    let r
    let stderr
    before(async () => {
      ;({ result: r, stderr } = await inNamespace(
        ['dns', 'direct', 'fetcher', 'fetcherLowerCase', 'gal', 'irsa', 'container', 'imds', 'podIdentity', 'authRight', 'authWrong', 'authEncoded', 'authMissing', 'authUnusable', 'doctor'],
        { hosts: false },
      ))
    })

    test('the namespace resolves none of the names, and without a proxy the fetcher cannot reach them', () => {
      assert.equal(Object.keys(r.dns.names).length, HOSTNAMES.length)
      for (const [name, address] of Object.entries(r.dns.names)) assert.match(address, /^unresolved/, `${name} resolves to ${address} in the namespace`)
      assert.equal(r.direct.ok, true)
      assertCodedError(r.direct.error, 'no proxy')
      assert.equal(r.direct.emulator.sts, 0)
    })

    test('GoogleTokenFetcher through HTTPS_PROXY: the token, one tunnel to Google STS and one to IAM', () => {
      assertToken(r.fetcher, 'fetcher')
      assert.deepEqual(r.fetcher.proxy.tunnels, BOTH_TUNNELS)
      assert.equal(r.fetcher.proxy.total, 2, JSON.stringify(r.fetcher.proxy))
      assert.deepEqual([r.fetcher.emulator.sts, r.fetcher.emulator.iam], [1, 1])
    })

    test('https_proxy (lower case, no scheme) is honoured too', () => {
      assertToken(r.fetcherLowerCase, 'https_proxy')
      assert.deepEqual(r.fetcherLowerCase.proxy.tunnels, BOTH_TUNNELS)
      assert.equal(r.fetcherLowerCase.proxy.total, 2)
    })

    test("google-auth-library's AwsClient with our supplier reaches Google through the same proxy (gaxios)", () => {
      assertToken(r.gal, 'AwsClient')
      assert.deepEqual(r.gal.proxy.tunnels, BOTH_TUNNELS, 'gaxios opened exactly the tunnels the native fetcher opens')
      assert.deepEqual([r.gal.emulator.sts, r.gal.emulator.iam], [1, 1])
    })

    test('IRSA: AssumeRoleWithWebIdentity goes through the proxy', () => {
      assert.equal(r.irsa.ok, true, JSON.stringify(r.irsa))
      assert.equal(r.irsa.error, undefined, JSON.stringify(r.irsa.error))
      assert.equal(r.irsa.issued, true)
      assert.deepEqual(r.irsa.proxy.tunnels, { [AWS_STS]: 1 })
      assert.equal(r.irsa.emulator.awsSts, 1)
    })

    test('ECS: the container endpoint and task metadata on 169.254.170.2 never go through HTTP_PROXY; Google does', () => {
      const c = r.container
      assert.equal(c.ok, true, JSON.stringify(c))
      assert.equal(c.region, 'us-east-1', `region from task metadata: ${JSON.stringify(c.region)}`)
      assert.ok(c.emulator.taskMetadata >= 1, 'the region came from task metadata')
      assert.equal(c.supplier.error, undefined, JSON.stringify(c.supplier.error))
      assert.equal(c.supplier.issued, true, 'the credentials the endpoint issued')
      assert.equal(c.afterSupplier.total, 0, `the proxy saw the container request: ${JSON.stringify(c.afterSupplier)}`)
      assertToken(c.fetcher, 'fetcher with container credentials')
      assert.deepEqual(c.proxy.tunnels, BOTH_TUNNELS, 'HTTP_PROXY serves https URLs too (gaxios)')
      assert.deepEqual(c.proxy.requests, {}, 'no plain request through the proxy')
      assert.equal(c.proxy.total, 2)
      assert.ok(c.emulator.container >= 1)
    })

    test('IMDS on 169.254.169.254 never goes through HTTP_PROXY / HTTPS_PROXY', () => {
      assert.equal(r.imds.ok, true, JSON.stringify(r.imds))
      assert.equal(r.imds.error, undefined, JSON.stringify(r.imds.error))
      assert.equal(r.imds.issued, true)
      assert.equal(r.imds.proxy.total, 0, JSON.stringify(r.imds.proxy))
      assert.ok(r.imds.emulator.imds >= 2, 'token and credentials from IMDS')
    })

    test('EKS Pod Identity on 169.254.170.23 never goes through HTTP_PROXY / HTTPS_PROXY', () => {
      assert.equal(r.podIdentity.ok, true, JSON.stringify(r.podIdentity))
      assert.equal(r.podIdentity.error, undefined, JSON.stringify(r.podIdentity.error))
      assert.equal(r.podIdentity.issued, true)
      assert.equal(r.podIdentity.proxy.total, 0, JSON.stringify(r.podIdentity.proxy))
      assert.equal(r.podIdentity.emulator.container, 1)
    })

    test('a proxy requiring Basic auth: user:password@ in HTTPS_PROXY works', () => {
      assertToken(r.authRight, 'right password')
      assert.deepEqual(r.authRight.proxy.tunnels, BOTH_TUNNELS)
      assert.deepEqual(r.authRight.proxy.denied, {})
    })

    test('a wrong proxy password: a coded error; the password in no error text, diagnose report or debug log', () => {
      const w = r.authWrong
      assert.equal(w.ok, true, JSON.stringify(w))
      assertCodedError(w.first.error, 'wrong password')
      assert.ok(Object.keys(w.proxy.denied).length > 0, `the proxy refused it: ${JSON.stringify(w.proxy)}`)
      assert.deepEqual(w.proxy.tunnels, {})
      assert.equal(w.emulator.sts, 0)
      assert.equal(w.diagnoseLeaks, false, 'the password in diagnose()')
      assert.deepEqual(w.diagnoseFailed, { step: 'sts', code: w.first.error.code }, 'diagnose() names the failing step')
      // The debug log was on: it said something, and (inNamespace checked) nothing with a marker.
      assert.match(stderr, /\[aws-wif-supplier\] debug:/)
    })

    test('a 407 from the proxy is a configuration error: not retryable, the CONNECT not repeated', () => {
      const w = r.authWrong
      assert.equal(w.first.error?.code, 'CONFIG_INVALID', w.first.error?.message)
      assert.equal(w.first.error?.retryable, false, `retryable: ${w.first.error?.retryable}`)
      assert.match(w.first.error?.hint ?? '', /proxy/)
      // One fetch, then one diagnose(): each should ask the proxy once.
      assert.deepEqual(w.proxy.denied, { [GOOGLE_STS]: 2 }, `CONNECTs refused: ${JSON.stringify(w.proxy.denied)}`)
    })

    test('a password with @ : % / (percent-encoded in the URL) reaches the proxy decoded, natively and in gaxios', () => {
      const { fetcher, gal } = r.authEncoded
      assertToken(fetcher, 'native, encoded password')
      assert.deepEqual(fetcher.proxy.denied, {}, `the proxy refused the native credentials: ${JSON.stringify(fetcher.proxy)}`)
      assert.deepEqual(fetcher.proxy.tunnels, BOTH_TUNNELS)
      assertToken(gal, 'gaxios, encoded password')
      assert.deepEqual(gal.proxy.tunnels, BOTH_TUNNELS)
    })

    test('a proxy requiring auth and no credentials in HTTPS_PROXY: a coded error', () => {
      assertCodedError(r.authMissing.error, 'no proxy credentials')
      assert.ok(Object.keys(r.authMissing.proxy.denied).length > 0)
      assert.equal(r.authMissing.emulator.sts, 0)
    })

    test('an unusable proxy URL holding a password: a coded error without it', () => {
      for (const [name, outcome] of Object.entries(r.authUnusable).filter(([k]) => k !== 'ok')) {
        assert.equal(outcome.constructorError, undefined, `${name}: the constructor threw: ${JSON.stringify(outcome.constructorError)}`)
        assertCodedError(outcome.error, name)
      }
      assert.equal(r.authUnusable.badPort.error.code, 'CONFIG_INVALID')
      assert.equal(r.authUnusable.garbage.error.code, 'CONFIG_INVALID')
    })

    test('a proxy scheme the client cannot speak (socks5://) is CONFIG_INVALID, not a retryable connection failure', () => {
      const { error } = r.authUnusable.socks
      assert.equal(error.code, 'CONFIG_INVALID', error.message)
      assert.equal(error.retryable, false)
    })

    test('`aws-wif-supplier doctor` through the proxy: passes with the right password, fails with a wrong one, shows neither', () => {
      const { right, wrong, countsRight } = r.doctor
      for (const run of [right, wrong]) {
        assert.equal(run.timedOut, false)
        for (const marker of Object.values(MARKERS)) assert.ok(!`${run.stdout}${run.stderr}`.includes(marker), 'a proxy password in the doctor output')
      }
      assert.equal(right.code, 0, `${right.stdout}\n${right.stderr}`)
      assert.ok(countsRight.tunnels[GOOGLE_STS] >= 1 && countsRight.tunnels[GOOGLE_IAM] >= 1, JSON.stringify(countsRight))
      assert.equal(wrong.code, 1, `${wrong.stdout}\n${wrong.stderr}`)
      assert.match(wrong.stdout, /^FAIL sts /m, wrong.stdout)
    })
  })

  describe('names in /etc/hosts: NO_PROXY and per-thread environments', () => {
    let r
    before(async () => {
      ;({ result: r } = await inNamespace(['dns', 'noProxy', 'noProxyStar', 'noProxyOneHost', 'noProxyOrigin', 'worker', 'podIdentityByName', 'imdsByName'], { hosts: true }))
    })

    test('EKS Pod Identity by host name (FULL_URI http://pod-identity.test): never through the proxy, whatever the URL form', () => {
      assert.equal(r.podIdentityByName.error, undefined, JSON.stringify(r.podIdentityByName.error))
      assert.equal(r.podIdentityByName.issued, true)
      assert.equal(r.podIdentityByName.proxy.total, 0, `the proxy saw the token request: ${JSON.stringify(r.podIdentityByName.proxy)}`)
      assert.equal(r.podIdentityByName.emulator.container, 1)
    })

    test('IMDS by host name (AWS_EC2_METADATA_SERVICE_ENDPOINT=http://imds.test): never through the proxy', () => {
      assert.equal(r.imdsByName.error, undefined, JSON.stringify(r.imdsByName.error))
      assert.equal(r.imdsByName.issued, true)
      assert.equal(r.imdsByName.proxy.total, 0, `the proxy saw IMDS requests: ${JSON.stringify(r.imdsByName.proxy)}`)
      assert.ok(r.imdsByName.emulator.imds >= 2, 'token and credentials from IMDS')
    })

    test('the namespace resolves the names to 127.0.0.1', () => {
      assert.equal(Object.keys(r.dns.names).length, HOSTNAMES.length)
      for (const [name, address] of Object.entries(r.dns.names)) assert.equal(address, '127.0.0.1', name)
    })

    test('NO_PROXY=.googleapis.com: direct connections to the hosts-file address, no tunnel', () => {
      assertToken(r.noProxy, 'NO_PROXY')
      assert.equal(r.noProxy.proxy.total, 0, JSON.stringify(r.noProxy.proxy))
      assert.deepEqual(r.noProxy.stsListeners, ['127.0.0.1:443'], 'reached the front on :443 directly')
    })

    test('no_proxy=*.googleapis.com (NO_PROXY unset) bypasses as well', () => {
      assertToken(r.noProxyStar, 'no_proxy')
      assert.equal(r.noProxyStar.proxy.total, 0, JSON.stringify(r.noProxyStar.proxy))
    })

    test('NO_PROXY naming one host: that host direct, the other through the proxy', () => {
      assertToken(r.noProxyOneHost, 'NO_PROXY one host')
      assert.deepEqual(r.noProxyOneHost.proxy.tunnels, { [GOOGLE_IAM]: 1 })
      assert.deepEqual(r.noProxyOneHost.stsListeners, ['127.0.0.1:443'])
    })

    test('NO_PROXY naming an origin (https://iamcredentials.googleapis.com): that host direct', () => {
      assertToken(r.noProxyOrigin, 'NO_PROXY origin')
      assert.deepEqual(r.noProxyOrigin.proxy.tunnels, { [GOOGLE_STS]: 1 })
      assert.equal(r.noProxyOrigin.proxy.total, 1)
    })

    test('a worker_thread with HTTPS_PROXY in its own env uses it; the main thread (none) does not', () => {
      const w = r.worker
      assert.equal(w.ok, true, JSON.stringify(w))
      assert.equal(w.inWorker.tokenPrefix, 'ya29.sa.', JSON.stringify(w.inWorker))
      assert.deepEqual(w.afterWorker.tunnels, BOTH_TUNNELS, 'the worker went through its proxy')
      assert.equal(w.mainHasProxy, false)
      assertToken(w.inMain, 'main thread')
      assert.equal(w.proxy.total, 2, `the main thread used the worker's proxy: ${JSON.stringify(w.proxy)}`)
      assert.deepEqual(w.stsListeners.at(-1), '127.0.0.1:443', 'the main thread connected directly')
    })
  })
})

// The counts above are only meaningful if the proxy sees what a client sends it: check it on
// loopback with Node's own client (no namespace needed).
describe('the test proxy counts what it is sent', () => {
  const viaProxy = (proxy, options) =>
    new Promise((resolve, reject) => {
      const { port } = new URL(proxy.url)
      const req = http.request({ host: '127.0.0.1', port, ...options }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode))
      })
      req.on('error', reject)
      req.on('connect', (res, socket) => {
        socket.destroy()
        resolve(res.statusCode)
      })
      req.end()
    })

  test('absolute-form requests and CONNECTs, routed, unrouted and without credentials', async () => {
    const em = await startEmulator()
    const route = { host: '127.0.0.1', port: Number(new URL(em.url).port) }
    const proxy = await startProxy({ routes: { 'metadata.test:80': route, 'google.test:443': route } })
    const authProxy = await startProxy({ routes: { 'google.test:443': route }, auth: { user: 'u', password: 'p' } })
    try {
      // Forwarded: the emulator's IMDS answers 401 (no session token), not the proxy.
      assert.equal(await viaProxy(proxy, { path: 'http://metadata.test/latest/meta-data/placement/availability-zone' }), 401)
      assert.equal(await viaProxy(proxy, { path: 'http://169.254.170.2/v2/credentials/x' }), 502)
      assert.equal(await viaProxy(proxy, { method: 'CONNECT', path: 'google.test:443' }), 200)
      assert.equal(await viaProxy(proxy, { path: '/not-a-proxy-request' }), 400)
      assert.deepEqual(proxy.counts(), {
        tunnels: { 'google.test:443': 1 },
        requests: { 'metadata.test:80': 1 },
        denied: {},
        unrouted: { '169.254.170.2:80': 1 },
        confused: 1,
        total: 4,
      })
      assert.equal(em.count('imds'), 1, 'the absolute-form request was forwarded')
      const basic = (password) => ({ 'proxy-authorization': `Basic ${Buffer.from(`u:${password}`).toString('base64')}` })
      assert.equal(await viaProxy(authProxy, { method: 'CONNECT', path: 'google.test:443' }), 407)
      assert.equal(await viaProxy(authProxy, { method: 'CONNECT', path: 'google.test:443', headers: basic('wrong') }), 407)
      assert.equal(await viaProxy(authProxy, { method: 'CONNECT', path: 'google.test:443', headers: basic('p') }), 200)
      assert.deepEqual([authProxy.counts().denied, authProxy.counts().tunnels], [{ 'google.test:443': 2 }, { 'google.test:443': 1 }])
    } finally {
      await proxy.close()
      await authProxy.close()
      await em.close()
    }
  })
})
