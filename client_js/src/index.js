// @ts-check
/**
 * spigot-client: the JavaScript client of spigot, for browsers and Node 20.
 *
 * - `getConfig(server)`: what a spigot offers (GET /api/config), so one client fits any.
 * - `upload(file, options)`: a resumable tus upload through tus-js-client (tus is not written
 *   again here), with progress, pause and resume, an AbortSignal, a token or an upload link.
 * - `download(url, options)`: a streaming download that resumes after a network error from
 *   the bytes it has, with If-Range so a changed file is never spliced, and that checks the
 *   sha256 spigot reports. Node writes a file; a browser gets a Blob.
 * - `events(server, id)`: the upload's typed events, reconnecting with Last-Event-ID.
 * - `importUrl(server, url)`: an import, with its progress, resolved with the file.
 */
import * as tus from 'tus-js-client'
import { createSHA256 } from 'hash-wasm'

const isNode = typeof process !== 'undefined' && !!process.versions?.node

/** @param {string | undefined} token @returns {Record<string, string>} */
function auth(token) {
  return token ? { Authorization: `Bearer ${token}` } : {}
}

/** @param {string} server */
function base(server) {
  return server.replace(/\/+$/, '')
}

/** @param {Response} resp @returns {Promise<never>} */
async function fail(resp) {
  let message = `${resp.status} ${resp.statusText}`
  try {
    const body = await resp.json()
    message = body?.error?.message ?? body?.message ?? message
  } catch {}
  throw new SpigotError(message, resp.status)
}

export class SpigotError extends Error {
  /** @param {string} message @param {number} [status] */
  constructor(message, status) {
    super(message)
    this.name = 'SpigotError'
    this.status = status
  }
}

/**
 * @param {string} server
 * @param {{ token?: string, signal?: AbortSignal }} [options]
 * @returns {Promise<import('./index.d.ts').Config>}
 */
export async function getConfig(server, options = {}) {
  const resp = await fetch(`${base(server)}/api/config`, {
    headers: auth(options.token),
    signal: options.signal,
  })
  if (!resp.ok) return fail(resp)
  return resp.json()
}

/**
 * @param {Blob | File | Uint8Array | import('node:stream').Readable} file
 * @param {import('./index.d.ts').UploadOptions} options
 * @returns {import('./index.d.ts').UploadHandle}
 */
export function upload(file, options) {
  const endpoint = options.uploadLink ?? `${base(options.server ?? '')}/files/`
  /** @type {tus.Upload | undefined} */
  let current
  /** @type {(url: string) => void} */
  let done = () => {}
  /** @type {(error: Error) => void} */
  let failed = () => {}
  /** @type {Promise<{ url: string }>} */
  const finished = new Promise((resolve, reject) => {
    done = (url) => resolve({ url: url.split('?')[0] })
    failed = reject
  })
  const metadata = { ...(options.metadata ?? {}) }
  const named = /** @type {{ name?: string, type?: string }} */ (file)
  if (!metadata.filename && named.name) metadata.filename = named.name
  if (!metadata.filetype && named.type) metadata.filetype = named.type
  current = new tus.Upload(/** @type {any} */ (file), {
    endpoint,
    headers: auth(options.token),
    metadata,
    ...(options.chunkSize ? { chunkSize: options.chunkSize } : {}), // undefined is not "none"
    retryDelays: options.retryDelays ?? [0, 1000, 3000, 5000],
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    ...(options.urlStorage ? { urlStorage: options.urlStorage } : {}),
    onProgress: (sent, total) => options.onProgress?.(sent, total),
    onSuccess: () => done(/** @type {tus.Upload} */ (current).url ?? ''),
    onError: (error) => failed(error),
  })
  const start = async () => {
    const upload = /** @type {tus.Upload} */ (current)
    const previous = await upload.findPreviousUploads()
    if (previous.length) upload.resumeFromPreviousUpload(previous[0])
    upload.start()
  }
  options.signal?.addEventListener('abort', () => {
    current?.abort()
    failed(new SpigotError('the upload was aborted'))
  })
  start().catch(failed)
  return {
    finished,
    pause: () => current?.abort(),
    resume: () => current?.start(),
  }
}

/**
 * @param {string} url
 * @param {import('./index.d.ts').DownloadOptions} [options]
 * @returns {Promise<import('./index.d.ts').Downloaded>}
 */
export async function download(url, options = {}) {
  const retries = options.retries ?? 5
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
  try {
    for (let attempt = 0; ; attempt++) {
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
        if (options.signal?.aborted || attempt >= retries) throw error
        continue
      }
      if (received > 0 && resp.status === 200) {
        throw new SpigotError('the file changed on the server while it was downloading')
      }
      if (!resp.ok) return fail(resp)
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
          options.onProgress?.(received, total)
        }
      } catch (error) {
        if (options.signal?.aborted || attempt >= retries) throw error
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

/**
 * @param {string} server
 * @param {string} id an upload id, or an import's `import:` events path
 * @param {import('./index.d.ts').EventsOptions} [options]
 * @returns {AsyncGenerator<import('./index.d.ts').SpigotEvent>}
 */
export async function* events(server, id, options = {}) {
  const path = id.startsWith('/') ? id : `/files/${id}/events`
  let lastId = ''
  const terminal = new Set(options.until ?? ['complete', 'terminated', 'expired', 'error'])
  for (let attempt = 0; attempt <= (options.retries ?? 5); attempt++) {
    /** @type {Record<string, string>} */
    const headers = { ...auth(options.token), Accept: 'text/event-stream' }
    if (lastId) headers['Last-Event-ID'] = lastId
    let resp
    try {
      resp = await fetch(`${base(server)}${path}`, { headers, signal: options.signal })
    } catch (error) {
      if (options.signal?.aborted) throw error
      continue
    }
    if (!resp.ok) return await fail(resp)
    if (!resp.body) return
    const decoder = new TextDecoder()
    let buffer = ''
    const reader = resp.body.getReader()
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        buffer += decoder.decode(value, { stream: true })
        let end
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const event = parseFrame(frame)
          if (!event) continue
          lastId = event.id || lastId
          yield event
          if (terminal.has(event.type)) return
        }
      }
    } catch (error) {
      if (options.signal?.aborted) throw error
    }
  }
  throw new SpigotError('the event stream kept failing')
}

/** @param {string} frame @returns {import('./index.d.ts').SpigotEvent | null} */
export function parseFrame(frame) {
  let type = 'message'
  let id = ''
  const data = []
  for (const line of frame.split('\n')) {
    if (!line || line.startsWith(':')) continue
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'event') type = value
    else if (field === 'id') id = value
    else if (field === 'data') data.push(value)
  }
  if (!data.length) return null
  return { type, id, data: JSON.parse(data.join('\n')) }
}

/**
 * @param {string} server
 * @param {string} url
 * @param {import('./index.d.ts').ImportOptions} [options]
 * @returns {Promise<{ id: string, url: string, size: number, sha256: string | null }>}
 */
export async function importUrl(server, url, options = {}) {
  const resp = await fetch(`${base(server)}/imports`, {
    method: 'POST',
    headers: { ...auth(options.token), 'Content-Type': 'application/json' },
    body: JSON.stringify({ url, name: options.name }),
    signal: options.signal,
  })
  if (resp.status !== 202) return fail(resp)
  const job = await resp.json()
  for await (const event of events(server, job.events, { ...options, until: ['complete', 'error'] })) {
    if (event.type === 'progress') options.onProgress?.(event.data.bytes, event.data.total)
    if (event.type === 'error') throw new SpigotError(event.data.message)
    if (event.type === 'complete') return event.data.file
  }
  throw new SpigotError('the import ended without a result')
}
