// The browser's own EventSource (Debian's chromium, driven by playwright-core) following a
// tus upload's progress on a running spigot at $SPIGOT_URL (started with --cors-origin),
// from a page on another origin, as a real app would. Run by tests/test_tus_js.py.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { launchChromium } from './browser.mjs'

// The app's own origin: serves the page, nothing else.
async function appOrigin() {
  const html = await readFile(new URL('./eventsource.html', import.meta.url))
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
    res.end(html)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${server.address().port}/` }
}

const BASE = process.env.SPIGOT_URL
const TUS = { 'Tus-Resumable': '1.0.0' }

test('EventSource sees progress while a PATCH streams, then complete', async () => {
  const app = await appOrigin()
  const size = 8 * 1024 * 1024
  const created = await fetch(`${BASE}/files/`, {
    method: 'POST', headers: { ...TUS, 'Upload-Length': String(size) },
  })
  assert.equal(created.status, 201)
  const uploadUrl = created.headers.get('location')
  const id = uploadUrl.split('/').pop()

  const browser = await launchChromium()
  try {
    const page = await browser.newPage()
    await page.goto(`${app.url}?events=${encodeURIComponent(`${BASE}/files/${id}/events`)}`)
    await page.waitForFunction(() => window.events.length > 0) // the stream is open

    // One PATCH that trickles in over ~1.5 s, so progress must arrive mid-request.
    const chunk = Buffer.alloc(size / 16, 0x61)
    async function* trickle() {
      for (let i = 0; i < 16; i++) {
        yield chunk
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    const patched = await fetch(uploadUrl, {
      method: 'PATCH',
      headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
      body: trickle(),
      duplex: 'half',
    })
    assert.equal(patched.status, 204)

    await page.waitForFunction(() => window.done, null, { timeout: 15000 })
    const events = await page.evaluate(() => window.events)
    const progress = events.filter((e) => e.type === 'progress')
    assert.ok(progress.length >= 4, `only ${progress.length} progress events`)
    assert.ok(progress.some((e) => e.data.offset > 0 && e.data.offset < size))
    assert.deepEqual(progress.map((e) => e.data.offset), progress.map((e) => e.data.offset).sort((a, b) => a - b))
    const last = events.at(-1)
    assert.equal(last.type, 'complete')
    assert.equal(last.data.id, id)
    assert.equal(last.data.size, size)
    const ids = events.map((e) => Number(e.id))
    assert.deepEqual(ids, ids.slice().sort((a, b) => a - b))
    assert.equal(new Set(ids).size, ids.length)
  } finally {
    await browser.close()
    app.server.close()
  }
})
