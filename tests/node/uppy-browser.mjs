// Drives Debian's Chromium (playwright-core) through a page on its own origin that uploads
// with Uppy ($UPPY_DIR: uppy5 or uppy6, bundled by esbuild) straight to S3 via spigot's
// /s3/ routes. Prints one JSON line per case; tests/test_presign_browser.py checks them.
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { launchChromium } from './browser.mjs'

const dir = new URL(`./${process.env.UPPY_DIR}/`, import.meta.url)
const files = {
  '/': ['text/html; charset=utf-8', await readFile(new URL('./uppy.html', import.meta.url))],
  '/bundle.js': ['text/javascript', await readFile(new URL('./bundle.js', dir))],
}
const server = createServer((req, res) => {
  const [type, body] = files[req.url] || ['text/plain', 'not found']
  res.writeHead(files[req.url] ? 200 : 404, { 'Content-Type': type })
  res.end(body)
})
await new Promise((resolve) => server.listen(Number(process.env.PAGE_PORT), '127.0.0.1', resolve))

const browser = await launchChromium()
try {
  const page = await browser.newPage()
  page.on('console', (msg) => { if (msg.type() === 'error') console.error('page:', msg.text()) })
  await page.goto(`http://127.0.0.1:${process.env.PAGE_PORT}/`)
  for (const options of JSON.parse(process.env.CASES)) {
    const result = await page.evaluate((o) => window.spigotUpload(o), {
      endpoint: process.env.SPIGOT_URL, token: process.env.TOKEN, ...options,
    })
    console.log(JSON.stringify({ ...options, ...result }))
  }
} finally {
  await browser.close()
  server.close()
}
