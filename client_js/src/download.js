// @ts-check
// A streaming download that resumes after a network error from the bytes it has, with
// If-Range so a changed file is never spliced, and checks the sha256 spigot reports (its
// strong ETag). Node writes a file; a browser gets a Blob.
import { createSHA256 } from 'hash-wasm'
import { auth, fail, isNode, sleep, SpigotError } from './http.js'

const RETRY_DELAYS = [0, 1000, 2000, 4000, 8000]

/**
 * @param {string} url
 * @param {import('./index.d.ts').DownloadOptions} [options]
 * @returns {Promise<import('./index.d.ts').Downloaded>}
 */
export async function download(url, options = {}) {
  const delays = options.retryDelays ?? RETRY_DELAYS
  // hash-wasm: one streaming SHA-256 for browsers and Node alike (WebCrypto cannot stream).
  const hasher = await createSHA256()
  /** @type {Uint8Array[]} */
  const chunks = []
  /** @type {import('node:fs/promises').FileHandle | undefined} */
  let out
  if (options.output) {
    if (!isNode) throw new SpigotError('output is a file path: Node only')
    const fs = await import('node:fs/promises')
    out = await fs.open(options.output, 'w')
  }
  let received = 0
  let total = -1
  let etag = ''
  let failures = 0
  /** @param {unknown} error */
  const retry = async (error) => {
    if (options.signal?.aborted || failures >= delays.length) throw error
    options.onRetry?.(/** @type {Error} */ (error), received)
    await sleep(delays[failures++], options.signal)
  }
  try {
    for (;;) {
      /** @type {Record<string, string>} */
      const headers = { ...auth(options.token) }
      if (received > 0) {
        headers.Range = `bytes=${received}-`
        headers['If-Range'] = etag // a changed file answers 200: never spliced
      }
      /** @type {Response} */
      let resp
      try {
        resp = await fetch(url, { headers, signal: options.signal })
      } catch (error) {
        await retry(error)
        continue
      }
      if (received > 0 && resp.status === 200) {
        throw new SpigotError('the file changed on the server while it was downloading')
      }
      if (resp.status >= 500 || resp.status === 429) {
        await resp.body?.cancel()
        await retry(new SpigotError(`${resp.status} ${resp.statusText}`, resp.status))
        continue
      }
      if (!resp.ok) return await fail(resp)
      if (received === 0) {
        etag = resp.headers.get('etag') ?? ''
        total = Number(resp.headers.get('content-length') ?? -1)
      }
      if (!resp.body) throw new SpigotError('the response has no body')
      const reader = resp.body.getReader()
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          hasher.update(value)
          if (out) await out.write(value, 0, value.length, received)
          else chunks.push(value)
          received += value.length
          failures = 0 // progress was made: the next failure starts the delays over
          options.onProgress?.(received, total)
        }
      } catch (error) {
        await retry(error)
        continue // resume from `received`
      }
      if (total < 0 || received >= total) break
    }
  } finally {
    await out?.close()
  }
  const sha256 = hasher.digest('hex')
  const claimed = /^"([0-9a-f]{64})"$/.exec(etag)?.[1] ?? null
  if (claimed && claimed !== sha256) {
    throw new SpigotError(`the download's sha256 is ${sha256}, not ${claimed}`)
  }
  return {
    size: received,
    sha256,
    verified: claimed !== null,
    blob: out ? undefined : new Blob(/** @type {BlobPart[]} */ (chunks)),
  }
}
