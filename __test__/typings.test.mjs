// The published typings (index.d.ts) against google-auth-library's: `tsc --strict` must accept
// ContainerAwsCredentialsSupplier as an AwsSecurityCredentialsSupplier passed to `new AwsClient`
// (types/check.ts), must reject misuses (types/expect-error.ts, each line marked @ts-expect-error), and
// must report the plain misuse in types/wrong-usage.ts (the negative control).
//
// --skipLibCheck: @types/node is not installed, so google-auth-library's own .d.ts files (which
// import 'stream', 'http'…) cannot be checked; our files and the types they use still are.
//
// Run: node --test __test__/typings.test.mjs

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { test } from 'node:test'
import { hermeticEnv } from './emulator/index.mjs'
import { here } from './support.mjs'

const TSC = here('../node_modules/.bin/tsc')
const FLAGS = ['--strict', '--noEmit', '--skipLibCheck', '--pretty', 'false', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022']

/** Run tsc on `files`; resolves {code, output}. */
function tsc(files) {
  return new Promise((resolve, reject) => {
    execFile(TSC, [...FLAGS, ...files.map((f) => here(`types/${f}`))], { cwd: here('..'), env: hermeticEnv(), timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err)
      resolve({ code: err ? err.code : 0, output: `${stdout}${stderr}` })
    })
  })
}

test('the supplier is a google-auth-library AwsSecurityCredentialsSupplier; misuses are type errors', { timeout: 90_000 }, async () => {
  const { code, output } = await tsc(['check.ts', 'expect-error.ts'])
  assert.equal(output.trim(), '', output)
  assert.equal(code, 0)
})

test('negative control: using the credentials as a number does not compile', { timeout: 90_000 }, async () => {
  const { code, output } = await tsc(['wrong-usage.ts'])
  assert.notEqual(code, 0, 'tsc accepted wrong-usage.ts')
  const errors = output.trim().split('\n')
  assert.equal(errors.length, 1, output)
  assert.match(errors[0], /wrong-usage\.ts\(6,\d+\): error TS2322: Type 'AwsSecurityCredentials' is not assignable to type 'number'/)
})
