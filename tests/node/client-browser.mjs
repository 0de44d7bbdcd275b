// spigot-client's browser build (/static/spigot-client.js, what the page itself loads) in
// Debian's Chromium: a File upload that survives a page reload through tus-js-client's URL
// storage, a download to a Blob checked with hash-wasm's sha256, and typed events. The page
// is spigot's own, so the calls run under its Content-Security-Policy. Prints one JSON line
// for tests/test_client_js.py.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { launchChromium } from './browser.mjs'

const SPIGOT = process.env.SPIGOT_URL
const SIZE = 24 << 20
const seen = {}

// The same bytes in Node and in the page, from one tiny PRNG (xorshift32), so a reloaded page can make
// the very File again (same name, size and lastModified: the same tus fingerprint).
function bytes(size) {
  const out = new Uint8Array(size)
  let x = 2463534242
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    out[i] = x & 255
  }
  return out
}
const expected = createHash('sha256').update(bytes(SIZE)).digest('hex')

const browser = await launchChromium()
try {
  const page = await browser.newPage()
  const errors = []
  page.on('pageerror', (error) => errors.push(error.message))
  await page.goto(`${SPIGOT}/`)
  // The page's CSP allows no eval, so the bytes are made again in the page, by the same steps.
  const start = async () => page.evaluate(async ({ size, server }) => {
    const client = await import('/static/spigot-client.js')
    const data = new Uint8Array(size)
    let x = 2463534242
    for (let i = 0; i < size; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5
      data[i] = x & 255
    }
    const file = new File([data], 'browser-client.bin', { type: 'application/octet-stream', lastModified: 1700000000000 })
    window.progress = []
    const handle = client.upload(file, { server, chunkSize: 2 << 20, onProgress: (sent) => window.progress.push(sent) })
    window.finished = handle.finished.then(({ url }) => url)
    return (await client.unfinishedUploads()).length
  }, { size: SIZE, server: SPIGOT })

  seen.unfinishedBefore = await start()
  await page.waitForFunction((at) => window.progress.some((v) => v >= at), 8 << 20)
  await page.reload()
  seen.unfinishedAfterReload = await page.evaluate(async () => {
    const client = await import('/static/spigot-client.js')
    return (await client.unfinishedUploads()).map((u) => [u.name, u.size])
  })
  await start()
  seen.url = await page.evaluate(() => window.finished)
  seen.resumedFrom = await page.evaluate(() => Math.min(...window.progress.filter((v) => v > 0)))
  seen.unfinishedAtEnd = await page.evaluate(async () => (await (await import('/static/spigot-client.js')).unfinishedUploads()).length)

  Object.assign(seen, await page.evaluate(async (url) => {
    const client = await import('/static/spigot-client.js')
    const got = await client.download(url)
    const blob = new Uint8Array(await got.blob.arrayBuffer())
    const digest = [...new Uint8Array(await crypto.subtle.digest('SHA-256', blob))].map((b) => b.toString(16).padStart(2, '0')).join('')
    const types = []
    for await (const event of client.events(location.origin, url.split('/').pop())) types.push(event.type)
    return { downloaded: { size: got.size, sha256: got.sha256, verified: got.verified, blobSha256: digest }, events: types }
  }, seen.url))
  seen.expected = expected
  seen.errors = errors

  assert.equal(seen.unfinishedBefore, 0)
  assert.deepEqual(seen.unfinishedAfterReload, [['browser-client.bin', SIZE]])
} finally {
  await browser.close()
}
console.log(JSON.stringify(seen))
