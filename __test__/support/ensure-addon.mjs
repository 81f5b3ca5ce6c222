// Build the native addon once, when it is missing or older than its Rust sources.
//
//   node __test__/support/ensure-addon.mjs            # release build (what npm ships)
//   AWS_WIF_SUPPLIER_DEBUG_BUILD=1 node …             # debug build, faster to compile
//
// Used by `npm run demo` and `npm test` so that both work on a fresh clone after `npm ci`, with
// only Node, npm and cargo installed. A prebuilt binary from the platform npm package (installed
// as an optional dependency) is not used here: tests always run the code of this checkout.

import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

function newestMtime(path) {
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  return Math.max(0, ...readdirSync(path).map((name) => newestMtime(join(path, name))))
}

export function addonPath() {
  const abi = process.platform === 'linux' ? (process.report?.getReport()?.header?.glibcVersionRuntime ? '-gnu' : '-musl') : ''
  const arch = process.arch
  const platform = process.platform === 'win32' ? 'win32' : process.platform
  return join(root, `aws-wif-supplier.${platform}-${arch}${abi}${platform === 'win32' ? '-msvc' : ''}.node`)
}

export function ensureAddon({ quiet = false } = {}) {
  const target = addonPath()
  const sources = Math.max(newestMtime(join(root, 'src')), newestMtime(join(root, 'Cargo.toml')), newestMtime(join(root, 'Cargo.lock')))
  if (existsSync(target) && statSync(target).mtimeMs >= sources) return target
  const debug = process.env.AWS_WIF_SUPPLIER_DEBUG_BUILD === '1'
  if (!quiet) console.error(`building the native addon (${debug ? 'debug' : 'release'}; a clean release build takes 4-9 minutes)…`)
  const args = ['napi', 'build', '--platform', '--js', 'binding.js', '--dts', 'binding.d.ts', ...(debug ? [] : ['--release'])]
  const r = spawnSync('npx', args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
  if (r.status !== 0) throw new Error(`napi build failed (exit ${r.status})`)
  return target
}

if (process.argv[1] === fileURLToPath(import.meta.url)) ensureAddon()
