// A reader for the few facts of a 64-bit Mach-O file (a macOS .node) that the packaging test checks,
// independent of any toolchain: the CPU type, the dynamic libraries it loads (no Apple framework
// may be among them), and whether a symbol is defined and external (napi_register_module_v1).
//
// Format (Apple's <mach-o/loader.h>, <mach-o/nlist.h>): a mach_header_64 (magic 0xfeedfacf,
// cputype, …, ncmds, sizeofcmds), then load commands {cmd, cmdsize, …}: LC_LOAD_DYLIB (0xc),
// LC_LOAD_WEAK_DYLIB (0x80000018), LC_REEXPORT_DYLIB (0x8000001f) hold a dylib_command whose name
// is at the given offset; LC_SYMTAB (0x2) gives {symoff, nsyms, stroff, strsize} of nlist_64
// entries {n_strx u32, n_type u8, n_sect u8, n_desc u16, n_value u64}.

import { readFileSync } from 'node:fs'

export const CPU = { x86_64: 0x01000007, arm64: 0x0100000c }
const N_EXT = 0x01
const N_TYPE = 0x0e
const N_SECT = 0x0e

export function readMachO(path) {
  const b = readFileSync(path)
  if (b.readUInt32LE(0) !== 0xfeedfacf) throw new Error(`${path} is not a 64-bit little-endian Mach-O file`)
  const cputype = b.readUInt32LE(4)
  const filetype = b.readUInt32LE(12)
  const ncmds = b.readUInt32LE(16)
  const dylibs = []
  const defined = new Set()
  let at = 32
  for (let i = 0; i < ncmds; i++) {
    const cmd = b.readUInt32LE(at)
    const size = b.readUInt32LE(at + 4)
    if (cmd === 0xc || cmd === 0x80000018 || cmd === 0x8000001f) {
      const nameAt = at + b.readUInt32LE(at + 8)
      dylibs.push(b.toString('latin1', nameAt, b.indexOf(0, nameAt)))
    } else if (cmd === 0x2) {
      const [symoff, nsyms, stroff] = [b.readUInt32LE(at + 8), b.readUInt32LE(at + 12), b.readUInt32LE(at + 16)]
      for (let s = 0; s < nsyms; s++) {
        const e = symoff + s * 16
        const type = b.readUInt8(e + 4)
        if ((type & N_EXT) && (type & N_TYPE) === N_SECT) {
          const nameAt = stroff + b.readUInt32LE(e)
          defined.add(b.toString('latin1', nameAt, b.indexOf(0, nameAt)))
        }
      }
    }
    at += size
  }
  return { cputype, filetype, dylibs, exports: defined }
}
