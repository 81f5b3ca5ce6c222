// The published typings (index.d.ts) against google-auth-library's: `tsc --strict` must accept
// ContainerAwsCredentialsSupplier as an AwsSecurityCredentialsSupplier passed to `new AwsClient`
// (types/check.ts), must reject misuses (types/expect-error.ts, each line marked @ts-expect-error), and
// must report the plain misuse in types/wrong-usage.ts (the negative control).
//
// --skipLibCheck: google-auth-library's and gaxios' own .d.ts files are not ours to check; our
// files and every type they use still are.
//
// fromCredentialConfig() takes google-auth-library's ExternalAccountClientOptions and an app's own
// interface (types/credential-config-check.ts).
//
// The same for the methods written in JavaScript (types/authclient-check.ts with the module passed in,
// types/authclient-default-check.ts without it): their clients go into BigQuery and GoogleAuth.
// index.d.ts is hand-written over the generated binding.d.ts; a project WITHOUT google-auth-library
// must still compile against it (checked in a folder with no node_modules, without --skipLibCheck).
//
// Both google-auth-library 10 (the devDependency) and, when __test__/gal11/node_modules is installed
// (.ci/run does it), google-auth-library 11: the check files are copied next to that install so
// that 'google-auth-library' resolves to it.
//
// Run: node --test __test__/typings.test.mjs

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { test } from 'node:test'
import { hermeticEnv } from './emulator/index.mjs'
import { here } from './support.mjs'

const TSC = here('../node_modules/.bin/tsc')
const FLAGS = ['--strict', '--noEmit', '--skipLibCheck', '--pretty', 'false', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022']

/** Run tsc on `files` (under `dir`); resolves {code, output}. */
function tsc(files, dir = here('types'), flags = FLAGS) {
  return new Promise((resolve, reject) => {
    execFile(TSC, [...flags, ...files.map((f) => `${dir}/${f}`)], { cwd: here('..'), env: hermeticEnv(), timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err)
      resolve({ code: err ? err.code : 0, output: `${stdout}${stderr}` })
    })
  })
}

test('the supplier is a google-auth-library AwsSecurityCredentialsSupplier; misuses are type errors', { timeout: 90_000 }, async () => {
  const { code, output } = await tsc(['check.ts', 'expect-error.ts', 'fetcher-check.ts', 'credential-config-check.ts', 'authclient-check.ts', 'authclient-default-check.ts'])
  assert.equal(output.trim(), '', output)
  assert.equal(code, 0)
})

test('a TypeScript project without google-auth-library compiles against index.d.ts (no --skipLibCheck)', { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aws-wif-typings-'))
  try {
    for (const f of ['index.d.ts', 'binding.d.ts']) copyFileSync(here(`../${f}`), join(dir, f))
    writeFileSync(
      join(dir, 'app.ts'),
      `import { GoogleTokenFetcher, GoogleIdToken } from './index'
export async function run(): Promise<number> {
  const fetcher = new GoogleTokenFetcher({ audience: 'aud' })
  const id: GoogleIdToken = await fetcher.getIdToken('https://svc', { includeEmail: true })
  fetcher.invalidate()
  const client = fetcher.authClient()
  return id.expiresAt + String(client).length
}
`,
    )
    const flags = FLAGS.filter((f) => f !== '--skipLibCheck')
    const { code, output } = await tsc(['app.ts', 'index.d.ts'], dir, flags)
    assert.equal(output.trim(), '', output)
    assert.equal(code, 0)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('negative control: using the credentials as a number does not compile', { timeout: 90_000 }, async () => {
  const { code, output } = await tsc(['wrong-usage.ts'])
  assert.notEqual(code, 0, 'tsc accepted wrong-usage.ts')
  const errors = output.trim().split('\n')
  assert.equal(errors.length, 1, output)
  assert.match(errors[0], /wrong-usage\.ts\(6,\d+\): error TS2322: Type 'AwsSecurityCredentials' is not assignable to type 'number'/)
})

const GAL11 = here('gal11/node_modules/google-auth-library/package.json')

test('the same checks against google-auth-library 11 typings', { timeout: 90_000, skip: !existsSync(GAL11) && 'npm ci --prefix __test__/gal11 not run' }, async () => {
  const dir = here('gal11/types-check')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir)
  try {
    // authclient-default-check.ts is left out: from the repository root, index.d.ts resolves the
    // root google-auth-library (10); in an application both resolve to the application's.
    const files = ['check.ts', 'expect-error.ts', 'fetcher-check.ts', 'credential-config-check.ts', 'authclient-check.ts']
    for (const f of files) {
      writeFileSync(`${dir}/${f}`, readFileSync(here(`types/${f}`), 'utf8').replaceAll("'../../index'", "'../../../index'"))
    }
    const version = JSON.parse(readFileSync(GAL11, 'utf8')).version
    assert.match(version, /^11\./)
    const { code, output } = await tsc(files, dir)
    assert.equal(output.trim(), '', output)
    assert.equal(code, 0)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

// index.js only exports (lib/ holds the code), and the binding's internal helpers (the `__` names
// lib/ uses: __errorCodes, __configInvalid, __maxIdTokenAudiences …) stay internal: the values the
// package exports through require and import are exactly the values index.d.ts declares.
test('the exports of index.js and index.mjs are exactly the values index.d.ts declares', { timeout: 60_000 }, async () => {
  const ts = createRequire(import.meta.url)('typescript')
  const file = here('../index.d.ts')
  const program = ts.createProgram([file], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, noEmit: true, skipLibCheck: true })
  const checker = program.getTypeChecker()
  const declared = checker
    .getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(file)))
    .filter((s) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s).flags & ts.SymbolFlags.Value)
    .map((s) => s.name)
    .sort()
  const cjs = createRequire(import.meta.url)('../index.js')
  assert.deepEqual(Object.keys(cjs).sort(), declared, 'require')
  const esm = await import('../index.mjs')
  assert.deepEqual(Object.keys(esm).filter((k) => k !== 'default').sort(), declared, 'import')
  const binding = createRequire(import.meta.url)('../binding.js')
  const internal = Object.keys(binding).filter((k) => k.startsWith('__') && k !== '__napiBindingTarget')
  assert.ok(internal.includes('__errorCodes'), `the binding's internal helpers: ${internal.join(', ')}`)
  for (const name of internal) assert.ok(!declared.includes(name), `${name} is declared`)
})
