// Drives Debian's Chromium (playwright-core) through a page on its own origin that takes a
// file from a link with Uppy 6's @uppy/url, spigot standing in for Companion. The link is
// an origin this script serves (16 MiB, sent slowly enough for progress to show, and for
// the file to be paused and resumed on the way, as a person would in Uppy). Prints
// one JSON line; tests/test_uppy_url.py checks it against what spigot stored.
import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { launchChromium } from './browser.mjs'

// It serves ranges with an ETag, as file hosts do, so a paused import can go on from what
// spigot stored; it notes each request's Range and how many responses are being sent.
const remote = randomBytes(16 << 20)
const ETAG = '"linked-clip-1"'
const ranges = []
let sending = 0
const origin = createServer(async (req, res) => {
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
  const start = range && req.headers['if-range'] === ETAG ? Number(range[1]) : 0
  if (req.method === 'GET') ranges.push(req.headers.range ?? null)
  res.writeHead(start ? 206 : 200, {
    'Content-Type': 'video/mp4',
    'Content-Length': String(remote.length - start),
    'Content-Disposition': 'attachment; filename="linked clip.mp4"',
    'Accept-Ranges': 'bytes',
    ETag: ETAG,
    ...(start ? { 'Content-Range': `bytes ${start}-${remote.length - 1}/${remote.length}` } : {}),
  })
  if (req.method === 'HEAD') return res.end()
  sending++
  res.once('close', () => sending--)
  for (let at = start; at < remote.length && !res.destroyed; at += 1 << 20) {
    if (!res.write(remote.subarray(at, at + (1 << 20)))) await new Promise((r) => res.once('drain', r))
    await sleep(80)
  }
  res.end()
})
await new Promise((resolve) => origin.listen(0, '127.0.0.1', resolve))

const page = {
  '/': ['text/html; charset=utf-8', '<!doctype html><meta charset="utf-8"><title>link</title><script src="url-bundle.js"></script>'],
  '/url-bundle.js': ['text/javascript', await readFile(new URL('./uppy6/url-bundle.js', import.meta.url))],
}
const site = createServer((req, res) => {
  if (req.url === '/favicon.ico') return res.writeHead(204).end() // Chromium asks for it
  const [type, body] = page[req.url] || ['text/plain', 'not found']
  res.writeHead(page[req.url] ? 200 : 404, { 'Content-Type': type })
  res.end(body)
})
await new Promise((resolve) => site.listen(Number(process.env.PAGE_PORT), '127.0.0.1', resolve))

const browser = await launchChromium()
try {
  const tab = await browser.newPage()
  const consoleErrors = []
  tab.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()) })
  await tab.exposeFunction('originSending', () => sending)
  await tab.goto(`http://127.0.0.1:${process.env.PAGE_PORT}/`)
  const result = await tab.evaluate((o) => window.spigotImport(o), {
    spigot: process.env.SPIGOT_URL,
    token: process.env.TOKEN,
    url: `http://127.0.0.1:${origin.address().port}/media/clip`,
    pauseAt: 4 << 20,
  })
  const sha256 = createHash('sha256').update(remote).digest('hex')
  console.log(JSON.stringify({ ...result, sha256, remoteSize: remote.length, ranges, consoleErrors }))
} finally {
  await browser.close()
  site.close()
  origin.close()
}
