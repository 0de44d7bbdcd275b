// @ts-check
// What every call shares: the token header, the server's base URL, spigot's error shape.

export class SpigotError extends Error {
  /** @param {string} message @param {number} [status] */
  constructor(message, status) {
    super(message)
    this.name = 'SpigotError'
    this.status = status
  }
}

/** @param {string | undefined} token @returns {Record<string, string>} */
export function auth(token) {
  return token ? { Authorization: `Bearer ${token}` } : {}
}

/** @param {string} server */
export function base(server) {
  return server.replace(/\/+$/, '')
}

/** spigot's `{"error": {"message"}}` (or Companion's `{"message"}`) as a SpigotError.
 * @param {Response} resp @returns {Promise<never>} */
export async function fail(resp) {
  let message = `${resp.status} ${resp.statusText}`
  try {
    const body = await resp.json()
    message = body?.error?.message ?? body?.message ?? message
  } catch {}
  throw new SpigotError(message, resp.status)
}

/** @param {number} ms @param {AbortSignal} [signal] @returns {Promise<void>} */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => {
      clearTimeout(timer)
      reject(signal.reason)
    }, { once: true })
  })
}

export const isNode = typeof process !== 'undefined' && !!process.versions?.node
