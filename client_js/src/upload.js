// @ts-check
// A resumable upload: over tus through tus-js-client (tus is not written again here), or,
// where spigot offers direct uploads to S3, through its Companion-shaped /s3/ routes so
// the bytes go straight to the bucket (./direct.js). Either way the handle is the same.
import * as tus from 'tus-js-client'
import { getConfig } from './api.js'
import { directUpload } from './direct.js'
import { auth, base, SpigotError } from './http.js'

/**
 * @param {Blob | File | Uint8Array | import('node:stream').Readable} file
 * @param {import('./index.d.ts').UploadOptions} options
 * @returns {import('./index.d.ts').UploadHandle}
 */
export function upload(file, options) {
  /** @type {{ resolve: (v: { url: string }) => void, reject: (e: Error) => void }} */
  let settle = { resolve: () => {}, reject: () => {} }
  const promise = () =>
    new Promise((resolve, reject) => {
      settle = { resolve, reject }
    })
  /** @type {Promise<{ url: string }>} */
  let finished = /** @type {Promise<{ url: string }>} */ (promise())
  let failed = false
  let stopped = false
  /** @type {Promise<void> | undefined} */
  let cancelled
  /** @type {Transfer | undefined} */
  let transfer
  /** @param {Error} error */
  const fail = (error) => {
    failed = true
    settle.reject(error)
  }
  const chosen = choose(file, options).then(({ kind, config }) => {
    transfer = kind === 'direct'
      ? directTransfer(/** @type {Blob | Uint8Array} */ (file), options, () => settle, fail)
      : tusTransfer(file, options, config, () => settle, fail)
    if (!stopped) return transfer.start()
  })
  chosen.catch(fail)
  options.signal?.addEventListener('abort', () => {
    stopped = true
    transfer?.pause()
    fail(new SpigotError('the upload was aborted'))
  }, { once: true })
  return {
    get finished() {
      return finished
    },
    get url() {
      return transfer?.url()
    },
    pause: () => transfer?.pause(),
    resume: () => {
      if (options.signal?.aborted) return finished
      if (failed) {
        failed = false
        finished = /** @type {Promise<{ url: string }>} */ (promise())
      }
      chosen.then(() => transfer?.start()).catch(fail)
      return finished
    },
    cancel: () => {
      cancelled ??= (async () => {
        stopped = true
        await chosen.catch(() => {})
        // What the server could not remove now (gone already, unreachable) expires anyway.
        await transfer?.cancel().catch(() => {})
        fail(new SpigotError('the upload was cancelled'))
      })()
      return cancelled
    },
  }
}

/**
 * The server's config (to fit its limits), and whether the bytes go over tus or straight
 * to S3.
 * @param {unknown} file @param {import('./index.d.ts').UploadOptions} options
 * @returns {Promise<{ kind: 'tus' | 'direct', config: import('./index.d.ts').Config | null }>}
 */
async function choose(file, options) {
  const where = options.server ?? (options.uploadLink ? new URL(options.uploadLink).origin : null)
  const config = options.config ?? (where ? await getConfig(where).catch(() => null) : null)
  const direct = options.direct ?? 'auto'
  if (direct === false || options.uploadLink || !options.server) return { kind: 'tus', config }
  const sliceable = (typeof Blob !== 'undefined' && file instanceof Blob) || file instanceof Uint8Array
  if (direct === true) {
    if (!sliceable) throw new SpigotError('direct uploads take a Blob, File or Uint8Array')
    return { kind: 'direct', config }
  }
  // On local disk spigot receives the bytes either way, and tus resumes more finely.
  const s3 = !!config?.direct_uploads.enabled && config.direct_uploads.storage === 's3'
  return { kind: sliceable && s3 ? 'direct' : 'tus', config }
}

/**
 * @typedef {{ start(): Promise<void> | void, pause(): void, cancel(): Promise<void>, url(): string | undefined }} Transfer
 */

/**
 * @param {any} file @param {import('./index.d.ts').UploadOptions} options
 * @param {import('./index.d.ts').Config | null} config
 * @param {() => { resolve: (v: { url: string }) => void }} settled @param {(e: Error) => void} fail
 * @returns {Transfer}
 */
function tusTransfer(file, options, config, settled, fail) {
  // One PATCH may carry no more than the server's request limit (413 otherwise).
  const chunkSize = options.chunkSize ?? config?.limits.max_request_size ?? undefined
  const endpoint = options.uploadLink ?? `${base(options.server ?? '')}/files/`
  const metadata = { ...(options.metadata ?? {}) }
  const named = /** @type {{ name?: string, type?: string }} */ (file)
  if (!metadata.filename && named.name) metadata.filename = named.name
  if (!metadata.filetype && named.type) metadata.filetype = named.type
  /** @type {tus.Upload} */
  const upload = new tus.Upload(file, {
    endpoint,
    headers: auth(options.token),
    metadata,
    ...(chunkSize ? { chunkSize } : {}), // undefined is not "none"
    retryDelays: options.retryDelays ?? [0, 1000, 3000, 5000],
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    ...(options.urlStorage ? { urlStorage: options.urlStorage } : {}),
    onProgress: (sent, total) => options.onProgress?.(sent, total),
    onSuccess: () => settled().resolve({ url: (upload.url ?? '').split('?')[0] }),
    onError: (error) => fail(error),
  })
  let resumed = false
  return {
    async start() {
      if (!resumed) {
        resumed = true // across reloads: the URL tus-js-client kept for this very file
        const previous = await upload.findPreviousUploads()
        if (previous.length) upload.resumeFromPreviousUpload(previous[0])
      }
      upload.start()
    },
    pause: () => void upload.abort(),
    cancel: () => upload.abort(true), // DELETE: the server forgets it, and so does storage
    url: () => upload.url?.split('?')[0] ?? undefined,
  }
}

/**
 * @param {Blob | Uint8Array} file @param {import('./index.d.ts').UploadOptions} options
 * @param {() => { resolve: (v: { url: string }) => void }} settled @param {(e: Error) => void} fail
 * @returns {Transfer}
 */
function directTransfer(file, options, settled, fail) {
  /** @type {AbortController | undefined} */
  let running
  /** @type {import('./direct.js').DirectState} */
  const state = {}
  return {
    start() {
      if (running) return
      const controller = new AbortController()
      running = controller
      directUpload(file, options, state, controller.signal)
        .then((url) => settled().resolve({ url }))
        .catch((error) => {
          if (!controller.signal.aborted) fail(error)
        })
        .finally(() => {
          if (running === controller) running = undefined
        })
    },
    pause() {
      running?.abort()
      running = undefined
    },
    async cancel() {
      running?.abort()
      running = undefined
      await state.cancel?.()
    },
    url: () => state.location,
  }
}

/**
 * Uploads that started and did not finish, as tus-js-client remembered them (in
 * localStorage, in a browser): what a page offers to resume after a reload.
 * @param {{ urlStorage?: tus.UrlStorage }} [options]
 * @returns {Promise<import('./index.d.ts').Unfinished[]>}
 */
export async function unfinishedUploads(options = {}) {
  const storage = options.urlStorage ?? tus.defaultOptions.urlStorage
  if (!storage) return []
  const found = await storage.findAllUploads()
  return found.map((u) => ({
    key: String(u.urlStorageKey ?? ''),
    name: u.metadata?.filename ?? null,
    size: u.size ?? null,
    started: u.creationTime ? Date.parse(u.creationTime) : null,
    uploadUrl: u.uploadUrl ?? null,
  }))
}

/**
 * Forget an unfinished upload; with `terminate`, the server drops what it has too.
 * @param {import('./index.d.ts').Unfinished} unfinished
 * @param {{ urlStorage?: tus.UrlStorage, token?: string, terminate?: boolean }} [options]
 */
export async function forgetUpload(unfinished, options = {}) {
  const storage = options.urlStorage ?? tus.defaultOptions.urlStorage
  await storage?.removeUpload(unfinished.key)
  if (options.terminate && unfinished.uploadUrl) {
    await fetch(unfinished.uploadUrl, {
      method: 'DELETE',
      headers: { ...auth(options.token), 'Tus-Resumable': '1.0.0' },
    }).catch(() => {}) // already gone, or unreachable: it expires on its own
  }
}
