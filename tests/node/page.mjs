// spigot's own web page at / in Debian's Chromium (playwright-core), as a person uses it:
// sign in when asked, upload a big file and watch its progress, kill spigot mid-upload and
// resume, reload mid-upload and resume, see the file in the list, download it, copy its
// link, import from a URL, delete. It starts spigot itself ($SPIGOT_CMD, a JSON argv), so
// that it can kill and restart it, and prints one JSON line of what it saw for
// tests/test_web_page.py, which checks the bytes. Assertions here are about the page.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { launchChromium } from './browser.mjs'

const SPIGOT = process.env.SPIGOT_URL
const CMD = JSON.parse(process.env.SPIGOT_CMD)
const BIG = process.env.BIG_FILE
const BIG_NAME = BIG.split('/').pop()
const TOKEN = process.env.TOKEN || ''
const ARTIFACTS = process.env.ARTIFACTS
const seen = { mode: TOKEN ? 'jwt' : 'none' }

// ---- spigot, which this script kills and restarts ----
let spigot
async function startSpigot() {
  spigot = spawn(CMD[0], CMD.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] })
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${SPIGOT}/healthz`)).ok) return
    } catch {}
    await sleep(50)
  }
  throw new Error('spigot did not start')
}
function killSpigot() {
  spigot.kill('SIGKILL')
  return new Promise((resolve) => spigot.once('exit', resolve))
}

const sha256File = (path) =>
  new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    createReadStream(path).on('data', (d) => hash.update(d)).on('end', () => resolve(hash.digest('hex'))).on('error', reject)
  })
const sha256Url = async (url) => {
  const resp = await fetch(url, { headers: TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {} })
  assert.equal(resp.status, 200, `GET ${url}`)
  return createHash('sha256').update(Buffer.from(await resp.arrayBuffer())).digest('hex')
}

// ---- an origin to import from: 24 MiB, sent slowly enough to show progress ----
const remote = randomBytes(24 << 20)
seen.importSha256 = createHash('sha256').update(remote).digest('hex')
let abandoned = 0 // responses the client closed before their end: a cancelled import
const origin = createServer(async (req, res) => {
  res.on('close', () => { if (!res.writableEnded) abandoned += 1 })
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(remote.length) })
  for (let at = 0; at < remote.length; at += 1 << 20) {
    if (!res.write(remote.subarray(at, at + (1 << 20)))) await new Promise((r) => res.once('drain', r))
    await sleep(60)
  }
  res.end()
})
await new Promise((resolve) => origin.listen(0, '127.0.0.1', resolve))
const importUrl = `http://127.0.0.1:${origin.address().port}/remote-import.bin`

await startSpigot()
const browser = await launchChromium()
const errors = []
let watchErrors = true
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } })
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: SPIGOT })
  await context.addInitScript(() => {
    window.__csp = []
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`))
  })
  const page = await context.newPage()
  page.on('console', (msg) => { if (msg.type() === 'error' && watchErrors) errors.push(msg.text()) })
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`))
  const listings = [] // every GET of the collection: what the page asked the server for
  page.on('request', (req) => {
    const url = new URL(req.url())
    if (req.method() === 'GET' && url.pathname === '/files/') listings.push(url.search)
  })
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  const throttle = (bytesPerSecond) => cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond,
  })

  const resp = await page.goto(`${SPIGOT}/`)
  seen.csp = resp.headers()['content-security-policy']

  // ---- the token, when the server needs one ----
  const tokenForm = page.locator('#token-form')
  if (TOKEN) {
    await tokenForm.waitFor({ state: 'visible' })
    await page.locator('#status').filter({ hasText: 'needs an access token' }).waitFor()
    assert.equal(await page.locator('#browse').isDisabled(), true, 'no uploads before a token')
    await page.getByLabel('Access token').fill(TOKEN)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.locator('#status').filter({ hasText: 'Signed in as' }).waitFor()
  } else {
    await page.locator('#browse:enabled').waitFor()
    assert.equal(await tokenForm.isVisible(), false, 'no token field under --auth none')
  }

  // ---- keyboard and labels ----
  await page.locator('body').focus()
  const focused = []
  for (let i = 0; i < 12; i++) {
    await page.keyboard.press('Tab')
    focused.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim()))
  }
  assert.ok(focused.includes('browse'), `Tab reaches "Choose files": ${focused}`)
  assert.ok(focused.includes('import-url'), `Tab reaches the import field: ${focused}`)
  seen.unlabelled = await page.evaluate(() => [...document.querySelectorAll('button, input, a, progress, select, textarea')]
    .filter((n) => !n.closest('[hidden]') && n.type !== 'file')
    .filter((n) => !(n.getAttribute('aria-label') || n.textContent.trim() || (n.id && document.querySelector(`label[for="${n.id}"]`))))
    .map((n) => n.outerHTML))

  // ---- a 200 MiB upload; its progress bar moves through at least three values ----
  const row = (name) => page.locator('#uploads li', { has: page.locator('.name', { hasText: name }) }).first()
  const progressValues = async (item, until) => {
    const values = new Set()
    for (;;) {
      const [value, state] = await item.evaluate((li) => [li.querySelector('progress').value, li.dataset.state])
      values.add(value)
      if (until(state, value)) return [...values]
      await sleep(15)
    }
  }
  await throttle(120 << 20) // a fast link, but one a person could watch
  await page.setInputFiles('#picker', BIG)
  const first = row(BIG_NAME)
  seen.progress = await progressValues(first, (state) => state === 'done' || state === 'failed')
  assert.equal(await first.getAttribute('data-state'), 'done', await first.locator('.stats').textContent())
  seen.uploadedUrl = await first.locator('.stats a').getAttribute('href')
  seen.uploadedSha256 = await sha256Url(seen.uploadedUrl)

  // ---- the list, and its download link ----
  const fileRow = (id) => page.locator(`#file-rows tr[data-id="${id}"]`)
  const id = seen.uploadedUrl.split('/').pop()
  await fileRow(id).waitFor()
  seen.listed = (await fileRow(id).locator('td').allTextContents()).slice(0, 3)
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    fileRow(id).getByRole('link', { name: `Download ${BIG_NAME}` }).click(),
  ])
  const saved = join(ARTIFACTS, `downloaded-${seen.mode}.bin`)
  await download.saveAs(saved)
  seen.downloadedName = download.suggestedFilename()
  seen.downloadedSha256 = await sha256File(saved)

  // ---- copy link: a link that works without the token ----
  await fileRow(id).getByRole('button', { name: `Copy a link to ${BIG_NAME}` }).click()
  await page.locator('#status').filter({ hasText: 'Copied a link' }).waitFor()
  seen.copiedLink = await page.evaluate(() => navigator.clipboard.readText())
  const anonymous = await fetch(seen.copiedLink)
  seen.copiedStatus = anonymous.status
  seen.copiedSha256 = createHash('sha256').update(Buffer.from(await anonymous.arrayBuffer())).digest('hex')

  // ---- import from a URL, with live progress ----
  await page.getByLabel('URL of a file').fill(importUrl)
  await page.getByRole('button', { name: 'Import' }).click()
  const imported = page.locator('#imports li').first()
  seen.importProgress = await progressValues(imported, (state) => state === 'done' || state === 'failed')
  seen.importStats = await imported.locator('.stats').textContent()
  assert.equal(await imported.getAttribute('data-state'), 'done', seen.importStats)
  await page.locator('#file-rows td.name', { hasText: 'remote-import.bin' }).waitFor()
  const importedId = await page.locator('#file-rows tr', { hasText: 'remote-import.bin' }).getAttribute('data-id')
  seen.importedSha256 = await sha256Url(`${SPIGOT}/files/${importedId}`)
  // newest first, whatever order the store lists them in
  seen.rowOrder = await page.locator('#file-rows tr').evaluateAll((rows) => rows.map((r) => r.dataset.id))
  const api = await (await fetch(`${SPIGOT}/files/`, { headers: TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {} })).json()
  seen.newestFirst = api.sort((a, b) => b.created - a.created).map((f) => f.id)
  seen.importedId = importedId

  // ---- cancel an import: the row goes, and spigot lets go of the origin ----
  await page.getByLabel('URL of a file').fill(importUrl)
  await page.getByRole('button', { name: 'Import', exact: true }).click()
  const cancelled = page.locator('#imports li').first()
  await page.waitForFunction(() => Number(document.querySelector('#imports li progress')?.value) > 0)
  await cancelled.getByRole('button', { name: `Cancel the import of ${importUrl}` }).click()
  await page.locator('#status').filter({ hasText: 'Cancelled the import of' }).waitFor()
  seen.importRowsAfterCancel = await page.locator('#imports li').count()
  for (let i = 0; i < 100 && abandoned === 0; i++) await sleep(50)
  seen.originAbandoned = abandoned
  const afterCancel = await (await fetch(`${SPIGOT}/files/`, { headers: TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {} })).json()
  seen.importedCopies = afterCancel.filter((f) => f.name === 'remote-import.bin').length

  // ---- the page as it looks now: a screenshot, checked to be far from blank ----
  seen.screenshot = join(ARTIFACTS, `page-${seen.mode}.png`)
  const png = await page.screenshot({ path: seen.screenshot, fullPage: true })
  const blank = await context.newPage()
  seen.colours = await blank.evaluate(async (b64) => {
    const img = new Image()
    img.src = `data:image/png;base64,${b64}`
    await img.decode()
    const canvas = new OffscreenCanvas(img.width, img.height)
    const g = canvas.getContext('2d')
    g.drawImage(img, 0, 0)
    const px = g.getImageData(0, 0, img.width, img.height).data
    const counts = new Map()
    for (let i = 0; i < px.length; i += 4 * 7) {
      const c = (px[i] << 16) | (px[i + 1] << 8) | px[i + 2]
      counts.set(c, (counts.get(c) || 0) + 1)
    }
    const top = Math.max(...counts.values())
    return { distinct: counts.size, dominantShare: top / (px.length / 28) }
  }, png.toString('base64'))
  await blank.close()
  seen.cspViolations = await page.evaluate(() => window.__csp)
  seen.consoleErrors = [...errors]

  // ---- kill spigot mid-upload, restart it, click Resume ----
  watchErrors = false // a dead server is meant to log refused connections from here on
  await throttle(40 << 20)
  await page.setInputFiles('#picker', BIG)
  const second = row(BIG_NAME)
  await progressValues(second, (_, value) => value >= 60 << 20)
  await killSpigot()
  await page.waitForFunction(() => document.querySelector('#uploads li')?.dataset.state === 'failed', null, { timeout: 60000 })
  seen.stoppedAt = await second.evaluate((li) => li.querySelector('progress').value)
  await startSpigot()
  await second.getByRole('button', { name: `Resume ${BIG_NAME}` }).click()
  const afterKill = await progressValues(second, (state) => state === 'done' || state === 'failed')
  assert.equal(await second.getAttribute('data-state'), 'done', await second.locator('.stats').textContent())
  seen.resumedFrom = Math.min(...afterKill.filter((v) => v > 0))
  seen.killedUrl = await second.locator('.stats a').getAttribute('href')
  seen.killedSha256 = await sha256Url(seen.killedUrl)

  // ---- reload mid-upload: the page offers to resume it ----
  await throttle(40 << 20)
  await page.setInputFiles('#picker', BIG)
  await progressValues(row(BIG_NAME), (_, value) => value >= 50 << 20)
  await page.reload()
  await cdp.send('Network.enable') // the session outlives the reload; its throttle too
  if (TOKEN) await page.locator('#status').filter({ hasText: 'Signed in as' }).waitFor() // kept for the tab
  const offered = page.locator('#unfinished-list li', { hasText: BIG_NAME })
  await offered.waitFor()
  const [chooser] = await Promise.all([
    page.waitForEvent('filechooser'),
    offered.getByRole('button', { name: `Resume ${BIG_NAME}` }).click(),
  ])
  await chooser.setFiles(BIG)
  const third = row(BIG_NAME)
  const afterReload = await progressValues(third, (state) => state === 'done' || state === 'failed')
  assert.equal(await third.getAttribute('data-state'), 'done', await third.locator('.stats').textContent())
  seen.reloadResumedFrom = Math.min(...afterReload.filter((v) => v > 0))
  seen.reloadUrl = await third.locator('.stats a').getAttribute('href')
  seen.reloadSha256 = await sha256Url(seen.reloadUrl)
  assert.equal(await page.locator('#unfinished').isVisible(), false, 'nothing left unfinished')

  // ---- delete: a second press confirms ----
  const doomed = seen.killedUrl.split('/').pop()
  await fileRow(doomed).waitFor()
  const remove = fileRow(doomed).getByRole('button', { name: `Delete ${BIG_NAME}` })
  await remove.click()
  await remove.click()
  await fileRow(doomed).waitFor({ state: 'detached' })
  seen.deletedStatus = (await fetch(seen.killedUrl, { headers: TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {} })).status

  // ---- a long list: a hundred rows, then the rest behind "Show more" ----
  const auth = TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {}
  for (let i = 0; i < 120; i++) {
    const made = await fetch(`${SPIGOT}/files/?name=many-${i}.txt`, { method: 'POST', headers: auth, body: `file ${i}` })
    assert.equal(made.status, 201)
  }
  const rowIds = () => page.locator('#file-rows tr').evaluateAll((rows) => rows.map((r) => r.dataset.id))
  listings.length = 0
  await page.getByRole('button', { name: 'Refresh' }).click()
  await page.locator('#file-rows td.name', { hasText: 'many-119.txt' }).waitFor()
  seen.longFirstRows = (await rowIds()).length
  const more = page.locator('#files-more')
  seen.moreText = await more.textContent()
  await more.click()
  await more.waitFor({ state: 'hidden' })
  seen.longAllRows = await rowIds()
  seen.longFocus = await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))
  seen.longFirstAdded = await page.locator('#file-rows tr').nth(100).locator('td.name').textContent()
  const listed = await (await fetch(`${SPIGOT}/files/`, { headers: auth })).json()
  seen.longNewestFirst = listed.sort((a, b) => b.created - a.created).map((f) => f.id)
  await page.getByRole('button', { name: 'Refresh' }).click() // keeps what was opened
  await page.waitForFunction((n) => document.querySelectorAll('#file-rows tr').length === n && document.querySelector('#files-more').hidden, seen.longAllRows.length)
  seen.longListings = listings.slice()
} finally {
  await browser.close()
  origin.close()
  await killSpigot()
}
await writeFile(join(ARTIFACTS, `page-${seen.mode}.json`), JSON.stringify(seen, null, 2))
console.log(JSON.stringify(seen))
