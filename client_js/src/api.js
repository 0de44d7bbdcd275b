// @ts-check
// The small JSON calls: what the server offers, who the caller is, the file list (streamed
// NDJSON), delete, signed links, imports.
import { auth, base, fail, SpigotError } from './http.js'
import { events } from './events.js'

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
 * Who the token says the caller is, and their scopes (GET /api/me).
 * @param {string} server
 * @param {{ token?: string, signal?: AbortSignal }} [options]
 * @returns {Promise<import('./index.d.ts').Me>}
 */
export async function whoami(server, options = {}) {
  const resp = await fetch(`${base(server)}/api/me`, {
    headers: auth(options.token),
    signal: options.signal,
  })
  if (!resp.ok) return fail(resp)
  return resp.json()
}

/**
 * The caller's files, one at a time as the NDJSON listing streams in: a long list shows
 * its first rows before the last has been read.
 * @param {string} server
 * @param {{ token?: string, signal?: AbortSignal }} [options]
 * @returns {AsyncGenerator<import('./index.d.ts').FileInfo>}
 */
export async function* listFiles(server, options = {}) {
  const resp = await fetch(`${base(server)}/files/`, {
    headers: { ...auth(options.token), Accept: 'application/x-ndjson' },
    signal: options.signal,
  })
  if (!resp.ok) return await fail(resp)
  if (!resp.body) return
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  for (;;) {
    const { done, value } = await reader.read()
    if (value) buffer += value
    let end
    while ((end = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, end).trim()
      buffer = buffer.slice(end + 1)
      if (line) yield JSON.parse(line)
    }
    if (done) break
  }
  if (buffer.trim()) yield JSON.parse(buffer)
}

/**
 * One page of the caller's files: the newest first (`order: 'newest'`, the default) or in
 * id order, `limit` of them (1-1000), and where the next page is. Pass a result's `next`
 * back as `options.next` for the page after it (a `limit` given with it sizes that page). A list that shows a page at a time holds
 * only what it shows, where `listFiles` reads every file there is.
 * @param {string} server
 * @param {import('./index.d.ts').PageOptions} [options]
 * @returns {Promise<import('./index.d.ts').FilePage>}
 */
export async function listPage(server, options = {}) {
  const limit = String(options.limit ?? 100)
  const url = new URL(options.next ?? `${base(server)}/files/?order=${options.order ?? 'newest'}`)
  if (options.limit !== undefined || !options.next) url.searchParams.set('limit', limit)
  const resp = await fetch(url, {
    headers: auth(options.token),
    signal: options.signal,
  })
  if (!resp.ok) return fail(resp)
  const next = /<([^>]*)>\s*;\s*rel="next"/.exec(resp.headers.get('Link') ?? '')
  const total = resp.headers.get('X-Total-Count')
  return { files: await resp.json(), next: next ? next[1] : null, total: total === null ? null : Number(total) }
}

/**
 * @param {string} fileUrl
 * @param {{ token?: string, signal?: AbortSignal }} [options]
 */
export async function deleteFile(fileUrl, options = {}) {
  const resp = await fetch(fileUrl, {
    method: 'DELETE',
    headers: auth(options.token),
    signal: options.signal,
  })
  if (resp.status !== 204 && resp.status !== 404) return fail(resp)
}

/**
 * A signed download link to one file, for a plain <a href> or someone without a token.
 * @param {string} server
 * @param {string} id
 * @param {{ token?: string, expiresIn?: string | number, signal?: AbortSignal }} [options]
 * @returns {Promise<{ url: string, expires: number }>}
 */
export async function signLink(server, id, options = {}) {
  const resp = await fetch(`${base(server)}/sign`, {
    method: 'POST',
    headers: { ...auth(options.token), 'Content-Type': 'application/json' },
    body: JSON.stringify({ file: id, expires_in: options.expiresIn ?? '1h' }),
    signal: options.signal,
  })
  if (!resp.ok) return fail(resp)
  return resp.json()
}

/**
 * @param {string} server
 * @param {string} url
 * @param {import('./index.d.ts').ImportOptions} [options]
 * @returns {Promise<import('./index.d.ts').FileInfo>}
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
  // Aborting cancels the import on the server too (DELETE /imports/{id}), which removes
  // what it stored: an abandoned import would otherwise run to its end unwatched.
  const cancel = () => {
    fetch(`${base(server)}/imports/${job.id}`, { method: 'DELETE', headers: auth(options.token) })
      .catch(() => {}) // the abort is the caller's answer; the server sweeps what is left
  }
  options.signal?.addEventListener('abort', cancel, { once: true })
  try {
    for await (const event of events(server, job.events, { ...options, until: ['complete', 'error'] })) {
      if (event.type === 'progress') options.onProgress?.(event.data.bytes, event.data.total)
      if (event.type === 'error') throw new SpigotError(event.data.message)
      if (event.type === 'complete') return event.data.file
    }
  } finally {
    options.signal?.removeEventListener('abort', cancel)
  }
  throw new SpigotError('the import ended without a result')
}
