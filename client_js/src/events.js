// @ts-check
// Server-sent events over fetch (so a token travels as a header, and Node needs nothing
// more), reconnecting with Last-Event-ID after a dropped stream.
import { auth, base, fail, sleep, SpigotError } from './http.js'

/**
 * @param {string} server
 * @param {string} id an upload id, or an import's events path
 * @param {import('./index.d.ts').EventsOptions} [options]
 * @returns {AsyncGenerator<import('./index.d.ts').SpigotEvent>}
 */
export async function* events(server, id, options = {}) {
  const path = id.startsWith('/') ? id : `/files/${id}/events`
  let lastId = ''
  const terminal = new Set(options.until ?? ['complete', 'terminated', 'expired', 'error'])
  for (let attempt = 0; attempt <= (options.retries ?? 5); attempt++) {
    if (attempt > 0) await sleep(Math.min(500 * attempt, 3000), options.signal)
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
