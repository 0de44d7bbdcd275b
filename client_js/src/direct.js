// @ts-check
// Straight to S3 through spigot's /s3/ routes, the ones @uppy/aws-s3 calls: spigot makes
// the multipart upload and signs each part; the bytes go from here to the bucket. Parts
// that S3 already holds are kept, so a paused, failed or reloaded upload goes on from them
// (the upload's key and id are kept in localStorage where there is one).
import { auth, base, fail, sleep, SpigotError } from './http.js'

const MIB = 1024 * 1024
const MAX_PARTS = 10000
const CONCURRENCY = 3

/** @typedef {{ key?: string, uploadId?: string, location?: string, cancel?: () => Promise<void> }} DirectState */

/** @param {Blob | Uint8Array} file */
function sizeOf(file) {
  return file instanceof Uint8Array ? file.byteLength : file.size
}

/** @param {Blob | Uint8Array} file @param {string} server */
function fingerprint(file, server) {
  const named = /** @type {{ name?: string, type?: string, lastModified?: number }} */ (file)
  return `spigot-direct::${named.name ?? ''}-${named.type ?? ''}-${sizeOf(file)}-${named.lastModified ?? ''}-${server}`
}

/** @returns {Storage | undefined} */
function kept() {
  try {
    return globalThis.localStorage ?? undefined
  } catch {
    return undefined // storage disabled: resume only within this page
  }
}

/**
 * @param {Blob | Uint8Array} file
 * @param {import('./index.d.ts').UploadOptions} options
 * @param {DirectState} state
 * @param {AbortSignal} signal
 * @returns {Promise<string>} the file's spigot URL
 */
export async function directUpload(file, options, state, signal) {
  const server = base(options.server ?? '')
  const headers = auth(options.token)
  const size = sizeOf(file)
  const partSize = Math.max(options.partSize ?? 8 * MIB, Math.ceil(size / MAX_PARTS), 5 * MIB)
  const count = Math.max(1, Math.ceil(size / partSize))
  const lengthOf = (/** @type {number} */ n) => Math.min(partSize, size - (n - 1) * partSize)
  const storage = kept()
  const remembered = fingerprint(file, server)
  /** @param {string} path @param {RequestInit} [init] */
  const call = async (path, init = {}) => {
    const resp = await fetch(`${server}/s3${path}`, { ...init, headers: { ...headers, ...init.headers }, signal })
    if (!resp.ok) return fail(resp)
    return resp.json()
  }
  if (!state.uploadId) Object.assign(state, JSON.parse(storage?.getItem(remembered) ?? '{}'))
  /** @type {Map<number, string>} */
  const etags = new Map()
  if (state.uploadId && state.key) {
    const where = `/multipart/${encodeURIComponent(state.uploadId)}?key=${encodeURIComponent(state.key)}`
    try {
      for (const part of await call(where)) {
        if (part.Size === lengthOf(part.PartNumber)) etags.set(part.PartNumber, part.ETag)
      }
    } catch (error) {
      if (signal.aborted) throw error
      state.uploadId = state.key = undefined // gone (expired, aborted): start over
    }
  }
  if (!state.uploadId || !state.key) {
    const named = /** @type {{ name?: string, type?: string }} */ (file)
    const made = await call('/multipart', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        filename: options.metadata?.filename ?? named.name,
        type: options.metadata?.filetype ?? named.type ?? 'application/octet-stream',
        metadata: options.metadata ?? {},
      }),
    })
    state.key = made.key
    state.uploadId = made.uploadId
    storage?.setItem(remembered, JSON.stringify({ key: state.key, uploadId: state.uploadId }))
  }
  const key = `key=${encodeURIComponent(/** @type {string} */ (state.key))}`
  const at = `/multipart/${encodeURIComponent(/** @type {string} */ (state.uploadId))}`
  state.cancel = async () => {
    await fetch(`${server}/s3${at}?${key}`, { method: 'DELETE', headers })
    storage?.removeItem(remembered)
  }
  let sent = 0
  for (const n of etags.keys()) sent += lengthOf(n)
  options.onProgress?.(sent, size)
  /** @type {number[]} */
  const todo = []
  for (let n = 1; n <= count; n++) if (!etags.has(n)) todo.push(n)
  const delays = options.retryDelays ?? [0, 1000, 3000, 5000]
  const worker = async () => {
    for (let n = todo.shift(); n !== undefined; n = todo.shift()) {
      const start = (n - 1) * partSize
      const end = start + lengthOf(n)
      const body = file instanceof Uint8Array ? file.subarray(start, end) : file.slice(start, end)
      for (let attempt = 0; ; attempt++) {
        try {
          const { url } = await call(`${at}/${n}?${key}`)
          const resp = await fetch(url, { method: 'PUT', body: /** @type {BodyInit} */ (body), signal })
          if (!resp.ok) throw new SpigotError(`part ${n}: ${resp.status} ${resp.statusText}`, resp.status)
          const etag = resp.headers.get('etag')
          if (!etag) throw new SpigotError('the storage sent no ETag: its CORS must expose ETag (spigot s3 cors)')
          etags.set(n, etag)
          break
        } catch (error) {
          if (signal.aborted || attempt >= delays.length) throw error
          await sleep(delays[attempt], signal)
        }
      }
      sent += lengthOf(n)
      options.onProgress?.(sent, size)
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, todo.length) }, worker))
  const parts = [...etags].sort((a, b) => a[0] - b[0]).map(([PartNumber, ETag]) => ({ PartNumber, ETag }))
  const done = await call(`${at}/complete?${key}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ parts }),
  })
  storage?.removeItem(remembered)
  state.location = done.location
  return done.location
}
