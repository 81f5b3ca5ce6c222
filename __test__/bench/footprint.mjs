// Sizes: the .node binary (as built and stripped) and the installed footprint of each side.
//
//   ours  the files of this package a user installs: index.js, index.mjs, lib/, binding.js, the typings and the .node
//         (stripped, as the release profile ships it); it has no runtime dependencies
//   js    node_modules/@aws-sdk/credential-providers and the closure of its dependencies, resolved
//         from package-lock.json with Node's lookup rules (nested node_modules first, then upwards);
//         and, for the sample as written, that plus @aws-sdk/client-sts and its closure
//
// Sizes are apparent bytes (the sum of file sizes), so they do not depend on the file system.

import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const JS_PACKAGE = '@aws-sdk/credential-providers'
/** What google-auth-library's sample requires on top: the STS client it resolves the region with. */
export const JS_SAMPLE_PACKAGES = [JS_PACKAGE, '@aws-sdk/client-sts']
/** The package's JavaScript and typings: the entry points, binding.js and every lib/ module (package.json `files`). */
const ourFiles = (root) => ['index.js', 'index.mjs', 'binding.js', 'index.d.ts', 'binding.d.ts', ...readdirSync(join(root, 'lib')).filter((f) => f.endsWith('.js')).map((f) => join('lib', f))]

/** Bytes and file count of a directory tree, skipping `node_modules` (counted as packages of their own). */
function treeSize(dir) {
  let bytes = 0
  let files = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      if (entry.name === 'node_modules') continue
      const sub = treeSize(path)
      bytes += sub.bytes
      files += sub.files
    } else if (entry.isFile()) {
      bytes += lstatSync(path).size
      files += 1
    }
  }
  return { bytes, files }
}

/** Where Node would find `name` from the package installed at `from` (a lockfile key). */
function resolveInLock(packages, from, name) {
  for (let dir = from; ; dir = dir.slice(0, Math.max(0, dir.lastIndexOf('/node_modules/')))) {
    const candidate = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`
    if (packages[candidate]) return candidate
    if (!dir) return null
  }
}

/** Lockfile keys of `name` and everything it depends on (dependencies and installed optional ones). */
export function dependencyClosure(root, name) {
  const { packages } = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'))
  const start = resolveInLock(packages, '', name)
  if (!start) throw new Error(`${name} is not in package-lock.json`)
  const seen = new Set([start])
  const queue = [start]
  while (queue.length) {
    const key = queue.shift()
    const meta = packages[key]
    for (const dep of Object.keys({ ...meta.dependencies, ...meta.optionalDependencies })) {
      const found = resolveInLock(packages, key, dep)
      if (found && !seen.has(found) && existsSync(join(root, found))) {
        seen.add(found)
        queue.push(found)
      }
    }
  }
  return [...seen]
}

/** Installed footprint of the JS side (the union of the closures of `names`): {packages, bytes, files}. */
export function jsFootprint(root, names = [JS_PACKAGE]) {
  const keys = [...new Set(names.flatMap((name) => dependencyClosure(root, name)))]
  const total = keys.map((key) => treeSize(join(root, key))).reduce((a, b) => ({ bytes: a.bytes + b.bytes, files: a.files + b.files }))
  return { packages: keys.length, ...total }
}

/** The .node as built, and stripped (`strip --strip-all` of a copy); hasDebugInfo flags a debug build. */
export function binarySize(nodePath) {
  const bytes = statSync(nodePath).size
  const sections = spawnSync('readelf', ['-S', '-W', nodePath], { encoding: 'utf8' })
  const hasDebugInfo = sections.status === 0 ? sections.stdout.includes('.debug_info') : null
  const dir = mkdtempSync(join(tmpdir(), 'aws-wif-bench-'))
  try {
    const copy = join(dir, 'addon.node')
    copyFileSync(nodePath, copy)
    const strip = spawnSync('strip', ['--strip-all', copy])
    return { bytes, strippedBytes: strip.status === 0 ? statSync(copy).size : null, hasDebugInfo }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Installed footprint of our package: its JS files plus the stripped .node. */
export function oursFootprint(root, binary) {
  const files = ourFiles(root)
  const js = files.map((file) => statSync(join(root, file)).size).reduce((a, b) => a + b, 0)
  return { packages: 1, bytes: js + (binary.strippedBytes ?? binary.bytes), files: files.length + 1 }
}
