// Packaging, as a user meets it (issue #4):
//   - every Linux binary that was built (npm/<platform>/*.node, see .ci/build-binaries.sh)
//     has the right ELF machine, a musl one needs no glibc, a gnu one needs glibc <= 2.17;
//   - the arm64 glibc binary loads and answers under qemu-user (when qemu and an arm64 sysroot exist);
//   - `npm pack` ships only what users need;
//   - the packed main package plus the packed linux-x64-gnu package install into an empty project
//     with no cargo on PATH and no network (--offline), and the reference app runs there against
//     the emulator, through both require() and import;
//   - without a binary for the platform, the error names the platform and the package to install.
//
// Run: node --test __test__/packaging.test.mjs   (after .ci/build-binaries.sh for the binaries)

import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { hermeticEnv, startEmulator } from './emulator/index.mjs'
import { here, runNode } from './support.mjs'
import { CPU, readMachO } from './support/macho.mjs'

const ROOT = here('..')
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
const PLATFORMS = {
  'linux-x64-gnu': { machine: 0x3e, libc: 'gnu' },
  'linux-arm64-gnu': { machine: 0xb7, libc: 'gnu' },
  'linux-x64-musl': { machine: 0x3e, libc: 'musl' },
  'linux-arm64-musl': { machine: 0xb7, libc: 'musl' },
}
const binaryOf = (platform) => join(ROOT, 'npm', platform, `aws-wif-supplier.${platform}.node`)
const hasReadelf = (() => {
  try {
    execFileSync('readelf', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

/** e_machine of an ELF file (little-endian 64-bit). */
function elfMachine(path) {
  const fd = openSync(path, 'r')
  try {
    const header = Buffer.alloc(20)
    readSync(fd, header, 0, 20, 0)
    assert.equal(header.toString('latin1', 0, 4), '\x7fELF', `${path} is not an ELF file`)
    assert.equal(header[4], 2, 'not a 64-bit ELF')
    return header.readUInt16LE(18)
  } finally {
    closeSync(fd)
  }
}

/** NEEDED libraries and the GLIBC_x.y symbol versions a shared object requires. */
function dynamicNeeds(path) {
  const dynamic = execFileSync('readelf', ['-d', path], { encoding: 'utf8' })
  const versions = execFileSync('readelf', ['-V', path], { encoding: 'utf8' })
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1])
  const glibc = [...new Set([...versions.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])].join('.')))]
  return { needed, glibc }
}

const versionKey = (v) => v.split('.').map(Number).reduce((a, n) => a * 1000 + n, 0)

// macOS binaries, cross-built here with zig (issue 20, section 6): no Apple framework is linked
// (TLS trusts Node's roots; no platform verifier, no keychain), so nothing but libSystem and what
// Rust's std needs (libiconv) is loaded, and Node finds the module's entry point.
const DARWIN = { 'darwin-arm64': CPU.arm64, 'darwin-x64': CPU.x86_64 }
describe('macOS binaries', () => {
  for (const [platform, cpu] of Object.entries(DARWIN)) {
    const path = binaryOf(platform)
    test(`${platform}: Mach-O dylib for its CPU, no Apple framework, napi_register_module_v1 exported`, { skip: !existsSync(path) && `not built (run .ci/build-binaries.sh)` }, (t) => {
      const m = readMachO(path)
      t.diagnostic(`${platform}: ${(readFileSync(path).length / 1e6).toFixed(2)} MB; loads ${m.dylibs.join(', ')}`)
      assert.equal(m.cputype, cpu, 'CPU type')
      assert.equal(m.filetype, 6, 'MH_DYLIB')
      assert.deepEqual(m.dylibs.filter((d) => d.includes('.framework/')), [], 'Apple frameworks linked')
      for (const d of m.dylibs) assert.match(d, /^\/usr\/lib\/lib(System\.B|iconv\.2|charset\.1)\.dylib$/, `unexpected library ${d}`)
      assert.ok(m.exports.has('_napi_register_module_v1'), 'napi_register_module_v1 is not exported')
    })
  }
})

describe('Linux binaries', () => {
  for (const [platform, want] of Object.entries(PLATFORMS)) {
    const path = binaryOf(platform)
    test(`${platform}: architecture, libc and size`, { skip: !existsSync(path) && `not built (run .ci/build-binaries.sh)` }, (t) => {
      assert.equal(elfMachine(path), want.machine, 'ELF machine')
      const size = readFileSync(path).length
      t.diagnostic(`${platform}: ${(size / 1e6).toFixed(2)} MB stripped`)
      if (!hasReadelf) return t.diagnostic('readelf not installed: dynamic dependencies not checked')
      const { needed, glibc } = dynamicNeeds(path)
      if (want.libc === 'musl') {
        assert.deepEqual(glibc, [], 'a musl binary must not need glibc symbol versions')
        assert.ok(!needed.some((n) => /^lib(c|m|pthread|dl)\.so\.\d/.test(n)), `glibc libraries needed: ${needed}`)
        assert.ok(needed.includes('libc.so'), `musl libc.so expected in ${needed}`)
      } else {
        const newest = glibc.sort((a, b) => versionKey(a) - versionKey(b)).at(-1)
        assert.ok(versionKey(newest) <= versionKey('2.17'), `needs GLIBC_${newest}, more than 2.17`)
      }
    })
  }
})

const QEMU_SYSROOT = '/usr/aarch64-linux-gnu'
const ARM64_NODE = join(ROOT, '.ci', 'arm64-node', 'bin', 'node')

test('linux-arm64-gnu loads and answers under qemu-user', {
  timeout: 120_000,
  skip: (!existsSync(binaryOf('linux-arm64-gnu')) && 'binary not built') || (!existsSync(ARM64_NODE) && 'arm64 node not fetched (.ci/run does it)') || (!existsSync(QEMU_SYSROOT) && 'no arm64 sysroot (apt-get install qemu-user libc6-arm64-cross)'),
}, async () => {
  const em = await startEmulator()
  try {
    const script = `
      const { ContainerAwsCredentialsSupplier } = require(${JSON.stringify(join(ROOT, 'index.js'))})
      const s = new ContainerAwsCredentialsSupplier()
      Promise.all([s.getAwsRegion(), s.getAwsSecurityCredentials()]).then(([region, c]) =>
        console.log(JSON.stringify({ arch: process.arch, region, key: c.accessKeyId })))`
    const env = hermeticEnv({
      NAPI_RS_NATIVE_LIBRARY_PATH: binaryOf('linux-arm64-gnu'),
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v1/credentials`,
      AWS_REGION: 'eu-west-3',
    })
    // Asynchronously: the emulator answering it runs in this process.
    const { stdout } = await promisify(execFile)('qemu-aarch64', ['-L', QEMU_SYSROOT, ARM64_NODE, '-e', script], { env, timeout: 100_000 })
    const result = JSON.parse(stdout.trim().split('\n').at(-1))
    assert.equal(result.arch, 'arm64')
    assert.equal(result.region, 'eu-west-3')
    assert.ok(em.issued.has(result.key), 'credentials came from the emulator')
    assert.equal(em.count('container'), 1)
  } finally {
    await em.close()
  }
})

/** What `npm pack` would ship, as {files, size, unpackedSize}. */
function packList(dir) {
  const [info] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: dir, encoding: 'utf8', env: { ...process.env, npm_config_loglevel: 'silent' } }))
  return { files: info.files.map((f) => f.path).sort(), size: info.size, unpackedSize: info.unpackedSize }
}

// A binary built in the package root (`npm run build`) is packed too, so that `npm pack` of a built
// checkout installs anywhere with the same platform; the publish job has none there (its binaries go
// to npm/<platform>/), so the published main package carries no binary.
const LOCAL_BINARY = /^aws-wif-supplier\.[a-z0-9-]+\.node$/

test('npm pack ships only what users need', (t) => {
  // lib/: every module the entry points load (each .js file in the checkout's lib/).
  const LIB = readdirSync(join(ROOT, 'lib')).filter((f) => f.endsWith('.js')).map((f) => `lib/${f}`)
  const { files, size, unpackedSize } = packList(ROOT)
  const allowed = new Set(['package.json', 'index.js', 'index.mjs', 'binding.js', 'index.d.ts', 'binding.d.ts', 'bin/aws-wif-supplier.js', 'bin/gal-copies.js', ...LIB, 'README.md', 'README.ja.md', 'SECURITY.md', 'LICENSE'])
  assert.deepEqual(files.filter((f) => !allowed.has(f) && !LOCAL_BINARY.test(f)), [], 'unexpected files in the package')
  for (const required of ['package.json', 'index.js', 'index.mjs', 'binding.js', 'index.d.ts', 'binding.d.ts', 'bin/aws-wif-supplier.js', 'bin/gal-copies.js', ...LIB]) assert.ok(files.includes(required), required)
  const local = files.filter((f) => LOCAL_BINARY.test(f))
  t.diagnostic(`aws-wif-supplier: ${files.length} files${local.length ? ` (with the local ${local.join(', ')})` : ''}, ${(size / 1024).toFixed(1)} kB packed, ${(unpackedSize / 1024).toFixed(1)} kB unpacked`)
  const platform = binaryOf('linux-x64-gnu')
  if (existsSync(platform)) {
    const p = packList(join(ROOT, 'npm', 'linux-x64-gnu'))
    assert.deepEqual(p.files, ['README.md', 'aws-wif-supplier.linux-x64-gnu.node', 'package.json'])
    t.diagnostic(`aws-wif-supplier-linux-x64-gnu: ${(p.size / 1e6).toFixed(2)} MB packed, ${(p.unpackedSize / 1e6).toFixed(2)} MB unpacked`)
  }
})

describe('installed from packed tarballs, no cargo, offline', { skip: !existsSync(binaryOf('linux-x64-gnu')) && 'npm/linux-x64-gnu binary not built (run .ci/build-binaries.sh)' }, () => {
  let work
  let project
  let em

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'aws-wif-install-'))
    // The main package as `napi prepublish` would publish it: with its platform package as an
    // optional dependency (only the one we pack, so npm needs no registry).
    const stage = join(work, 'stage')
    mkdirSync(stage)
    for (const f of packList(ROOT).files.filter((f) => !LOCAL_BINARY.test(f))) cpSync(join(ROOT, f), join(stage, f), { recursive: true })
    const pkg = { ...PKG, optionalDependencies: { 'aws-wif-supplier-linux-x64-gnu': PKG.version } }
    delete pkg.scripts
    delete pkg.devDependencies
    writeFileSync(join(stage, 'package.json'), JSON.stringify(pkg, null, 2))
    const pack = (dir) => join(work, execFileSync('npm', ['pack', '--pack-destination', work], { cwd: dir, encoding: 'utf8' }).trim().split('\n').at(-1))
    const main = pack(stage)
    const platform = pack(join(ROOT, 'npm', 'linux-x64-gnu'))
    project = join(work, 'app')
    mkdirSync(project)
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'install-test', private: true, version: '1.0.0' }))
    const path = process.env.PATH.split(delimiter).filter((d) => !existsSync(join(d, 'cargo'))).join(delimiter)
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', platform, main], { cwd: project, env: { ...process.env, PATH: path }, stdio: 'pipe' })
    copyFileSync(join(ROOT, 'examples', 'reference-app', 'app.js'), join(project, 'app.js'))
    em = await startEmulator()
  })

  after(async () => {
    await em?.close()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  /** Environment of the reference app: loopback endpoints, no cargo on PATH, google-auth-library from the repo. */
  function appEnv(extra = {}) {
    const path = process.env.PATH.split(delimiter).filter((d) => !existsSync(join(d, 'cargo'))).join(delimiter)
    return hermeticEnv({
      PATH: path,
      NODE_PATH: join(ROOT, 'node_modules'),
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v1/credentials`,
      AWS_REGION: 'us-east-1',
      GCP_PROJECT_ID: 'my-project',
      WIF_AUDIENCE: em.config.audience,
      WIF_TOKEN_URL: `${em.url}/v1/token`,
      WIF_SERVICE_ACCOUNT_IMPERSONATION_URL: `${em.url}/v1/projects/-/serviceAccounts/${em.config.serviceAccount}:generateAccessToken`,
      BIGQUERY_API_ENDPOINT: em.url,
      ...extra,
    })
  }

  test('the binary comes from the platform package, not from the main one', () => {
    const main = join(project, 'node_modules', 'aws-wif-supplier')
    assert.ok(existsSync(join(main, 'index.js')))
    assert.ok(!readFileSync(join(main, 'package.json'), 'utf8').includes('"devDependencies"'))
    assert.ok(existsSync(join(project, 'node_modules', 'aws-wif-supplier-linux-x64-gnu', 'aws-wif-supplier.linux-x64-gnu.node')))
  })

  test('the reference app runs there (require) and prints the query row', { timeout: 60_000 }, async () => {
    const run = await runNode(join(project, 'app.js'), { env: appEnv(), args: ['--once'], timeoutMs: 50_000 })
    assert.equal(run.code, 0, run.stderr)
    const rows = JSON.parse(run.stdout.trim().split('\n').at(-1))
    assert.equal(rows[0].principal, em.config.serviceAccount)
    assert.equal(em.requests.filter((r) => r.route === 'sts').at(-1).verdict.ok, true)
  })

  test('ESM named imports and require() give the same classes', { timeout: 30_000 }, async () => {
    const script = join(project, 'esm.mjs')
    writeFileSync(script, `
      import { ContainerAwsCredentialsSupplier, GoogleTokenFetcher, diagnoseAws } from 'aws-wif-supplier'
      import { createRequire } from 'node:module'
      const cjs = createRequire(import.meta.url)('aws-wif-supplier')
      const same = cjs.ContainerAwsCredentialsSupplier === ContainerAwsCredentialsSupplier && cjs.GoogleTokenFetcher === GoogleTokenFetcher
      const creds = await new ContainerAwsCredentialsSupplier().getAwsSecurityCredentials()
      console.log(JSON.stringify({ same, fetcher: typeof GoogleTokenFetcher, diagnose: typeof diagnoseAws, key: creds.accessKeyId }))
    `)
    const run = await runNode(script, { env: appEnv(), timeoutMs: 25_000 })
    assert.equal(run.code, 0, run.stderr)
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1))
    assert.deepEqual({ ...out, key: undefined }, { same: true, fetcher: 'function', diagnose: 'function', key: undefined })
    assert.ok(em.issued.has(out.key))
  })

  test('without a binary for the platform, the error names the platform and the package', { timeout: 30_000 }, async () => {
    const script = join(project, 'missing.cjs')
    writeFileSync(script, `
      try { require('aws-wif-supplier'); console.log('loaded') }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }
    `)
    const run = await runNode(script, { env: appEnv({ NAPI_RS_NATIVE_LIBRARY_PATH: join(work, 'no-such.node'), NODE_PATH: join(work, 'nothing') }), timeoutMs: 25_000 })
    assert.equal(run.code, 0, run.stderr)
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1))
    assert.equal(out.code, 'NATIVE_BINDING_NOT_FOUND')
    assert.match(out.message, new RegExp(`${process.platform}-${process.arch}`))
    assert.match(out.message, /aws-wif-supplier-linux-x64-(gnu|musl)/)
  })

  test('`npm pack` of a built checkout installs on its own (the local binary is packed)', { timeout: 120_000 }, async () => {
    const dir = join(work, 'checkout-pack')
    mkdirSync(dir)
    const tarball = join(dir, execFileSync('npm', ['pack', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').at(-1))
    const app = join(dir, 'app')
    mkdirSync(app)
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'checkout-pack-test', private: true, version: '1.0.0' }))
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { cwd: app, stdio: 'pipe' })
    const script = join(app, 'use.cjs')
    writeFileSync(script, `
      const { ContainerAwsCredentialsSupplier } = require('aws-wif-supplier')
      new ContainerAwsCredentialsSupplier().getAwsSecurityCredentials().then((c) => console.log(JSON.stringify({ key: c.accessKeyId })))
    `)
    const run = await runNode(script, { env: appEnv({ NODE_PATH: join(work, 'nothing') }), timeoutMs: 25_000 })
    assert.equal(run.code, 0, run.stderr)
    assert.ok(em.issued.has(JSON.parse(run.stdout.trim().split('\n').at(-1)).key))
  })
})
