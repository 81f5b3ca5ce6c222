'use strict'
// The JavaScript fast path: answer repeated calls without crossing into native code. The native
// side says until when a result may be reused (`refreshAt`), and until then every caller gets the
// same settled promise. All caching policy (refresh margin, single flight, failures never cached,
// serve-while-valid, background refresh) lives in Rust; a memo only remembers the last answer and
// its deadline.

const { binding } = require('./native.js')

/**
 * Remembers one promise until a deadline. `start()` must resolve to `{ value, until }` (epoch ms);
 * callers get a promise of `value`. While a start is in flight every caller shares it; a rejection
 * is never kept.
 */
class Memo {
  #promise = null
  #until = 0
  #value = undefined

  get(start) {
    if (this.#promise !== null && Date.now() < this.#until) return this.#promise
    const promise = start().then(
      (leased) => {
        if (this.#promise === promise) {
          this.#until = leased.until
          this.#value = leased.value
        }
        return leased.value
      },
      (error) => {
        if (this.#promise === promise) this.reset()
        throw error
      },
    )
    this.#promise = promise
    this.#until = Infinity
    return promise
  }

  /** Forget the remembered promise: the next `get` starts again. */
  reset() {
    this.#promise = null
    this.#until = 0
    this.#value = undefined
  }

  /** Forget it only if its settled value is the token `token` (a `{ token }` object). */
  dropIf(token) {
    if (this.#value !== undefined && this.#value.token === token) this.reset()
  }
}

/** At most this many ID-token memos per configuration and thread: the native caches' bound. */
const MAX_ID_TOKEN_MEMOS = binding.__maxIdTokenAudiences()

/**
 * This thread's memos of one configuration (one native cache), shared by every fetcher object and
 * every client of that configuration in the thread, so that `invalidate()` can drop them all.
 */
class MemoSet {
  wait = new Memo()
  background = new Memo()
  #ids = new Map()

  /** The memo of one ID-token audience, least recently used evicted beyond the bound. */
  id(key) {
    let memo = this.#ids.get(key)
    if (memo) {
      this.#ids.delete(key)
    } else {
      memo = new Memo()
      if (this.#ids.size >= MAX_ID_TOKEN_MEMOS) this.#ids.delete(this.#ids.keys().next().value)
    }
    this.#ids.set(key, memo)
    return memo
  }

  peekId(key) {
    return this.#ids.get(key)
  }

  reset() {
    this.wait.reset()
    this.background.reset()
    this.#ids.clear()
  }
}

/** cacheId → WeakRef<MemoSet>: this thread's memos per configuration, while some object uses them. */
const memoSets = new Map()

/** The memos of the native fetcher `native`'s configuration in this thread. */
function memosFor(native) {
  const id = native.cacheId
  let set = memoSets.get(id)?.deref()
  if (set === undefined) {
    set = new MemoSet()
    memoSets.set(id, new WeakRef(set))
    if (memoSets.size > 256) for (const [key, ref] of memoSets) if (ref.deref() === undefined) memoSets.delete(key)
  }
  return set
}

module.exports = { Memo, memosFor }
