// spigot-client under Node 20 against a running spigot at $SPIGOT_URL (started by
// tests/test_client_js.py with --insecure-proxy-allow-private, for the import's local origin).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import {
  deleteFile, download, events, getConfig, importUrl, listFiles, listPage, parseFrame, signLink, upload, whoami,
} from '../src/index.js'

const SERVER = process.env.SPIGOT_URL
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex')
const data = randomBytes(6 * 1024 * 1024 + 5)
const dir = await mkdtemp(join(tmpdir(), 'spigot-client-'))

/** A server on loopback for the length of one test. */
async function serve(handler) {
  const server = createServer(handler)
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() }
}

test('getConfig says what the server offers', async () => {
  const config = await getConfig(SERVER)
  assert.equal(config.auth, 'none')
  assert.equal(config.tus.endpoint, '/files/')
  assert.ok(config.tus.extensions.includes('creation-with-upload'))
})

test('upload with progress, then a verified download to a file', async () => {
  const seen = []
  const handle = upload(data, {
    server: SERVER,
    chunkSize: 1024 * 1024,
    metadata: { filename: 'data.bin' },
    onProgress: (sent) => seen.push(sent),
  })
  const { url } = await handle.finished
  assert.match(url, /\/files\/[\w-]{22}$/)
  assert.ok(new Set(seen).size >= 3, `progress moved through ${seen}`)
  assert.equal(seen.at(-1), data.length)
  const output = join(dir, 'out.bin')
  const got = await download(url, { output })
  assert.deepEqual([got.size, got.sha256, got.verified], [data.length, sha256(data), true])
  assert.equal(sha256(await readFile(output)), sha256(data))
})

test('pause and resume', async () => {
  let paused = false
  const handle = upload(data, {
    server: SERVER,
    chunkSize: 1024 * 1024,
    onProgress: (sent) => {
      if (!paused && sent >= 1024 * 1024) {
        paused = true
        handle.pause()
        setTimeout(() => handle.resume(), 300)
      }
    },
  })
  const { url } = await handle.finished
  assert.ok(paused)
  const got = await download(url)
  assert.equal(got.sha256, sha256(data))
  assert.equal(sha256(Buffer.from(await got.blob.arrayBuffer())), sha256(data))
})

test('a download resumes after a network error, with If-Range', async () => {
  const { url } = await upload(data, { server: SERVER }).finished
  const requests = []
  const flaky = await serve(async (req, res) => {
    requests.push({ range: req.headers.range, ifRange: req.headers['if-range'] })
    const upstream = await fetch(url, { headers: req.headers.range ? { Range: req.headers.range, 'If-Range': req.headers['if-range'] } : {} })
    res.writeHead(upstream.status, Object.fromEntries(upstream.headers))
    const body = Buffer.from(await upstream.arrayBuffer())
    if (requests.length === 1) {
      res.write(body.subarray(0, 1024 * 1024), () => res.socket.destroy()) // the network drops
    } else {
      res.end(body)
    }
  })
  try {
    const id = url.split('/').pop()
    const got = await download(`${flaky.url}/files/${id}`)
    assert.equal(got.sha256, sha256(data))
    assert.equal(got.verified, true)
    assert.equal(requests.length, 2)
    assert.match(requests[1].range, /^bytes=\d+-$/)
    assert.match(requests[1].ifRange, /^"[0-9a-f]{64}"$/)
  } finally {
    flaky.close()
  }
})

test('a file that changed while downloading is never spliced', async () => {
  let calls = 0
  const changing = await serve((req, res) => {
    calls++
    const body = calls === 1 ? data : randomBytes(data.length) // a new version, served whole
    res.writeHead(200, { 'Content-Length': String(body.length), ETag: `"${sha256(body)}"` })
    if (calls === 1) res.write(body.subarray(0, 4096), () => res.socket.destroy())
    else res.end(body)
  })
  try {
    await assert.rejects(download(`${changing.url}/f`), /changed on the server/)
  } finally {
    changing.close()
  }
})

test('events of an upload, typed', async () => {
  const { url } = await upload(Buffer.from('hello events'), { server: SERVER }).finished
  const seen = []
  for await (const event of events(SERVER, url.split('/').pop())) seen.push(event)
  const last = seen.at(-1)
  assert.equal(last.type, 'complete')
  assert.equal(last.data.sha256, sha256(Buffer.from('hello events')))
  assert.deepEqual(parseFrame('id: 7\nevent: progress\ndata: {"offset":1}'), {
    type: 'progress', id: '7', data: { offset: 1 },
  })
  assert.equal(parseFrame(': heartbeat'), null)
})

test('importUrl reports progress and resolves with the file', async () => {
  const origin = await serve((req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(data.length) })
    res.end(data)
  })
  try {
    const progress = []
    const file = await importUrl(SERVER, `${origin.url}/remote.bin`, {
      onProgress: (bytes) => progress.push(bytes),
    })
    assert.equal(file.size, data.length)
    assert.equal(file.sha256, sha256(data))
    assert.ok(progress.length >= 1)
    assert.equal((await download(file.url)).sha256, sha256(data))
  } finally {
    origin.close()
  }
})

test('aborting an import cancels it on the server, which lets go of the upstream', async () => {
  let sent = 0
  let closed
  const gone = new Promise((resolve) => { closed = resolve })
  const origin = await serve(async (req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(8 * data.length) })
    req.socket.on('close', closed)
    for (let i = 0; i < 8 && !res.destroyed; i++) {
      res.write(data)
      sent += 1
      await new Promise((resolve) => setTimeout(resolve, 300))
    }
    res.end()
  })
  try {
    const controller = new AbortController()
    const importing = importUrl(SERVER, `${origin.url}/slow.bin`, {
      name: 'cancelled.bin',
      signal: controller.signal,
      onProgress: (bytes) => { if (bytes > 0) controller.abort() },
    })
    await assert.rejects(importing, /abort/i)
    await gone // spigot closed its upstream: the import stopped, not just our watching
    assert.ok(sent < 8, `the origin sent ${sent} of 8 pieces`)
    const names = []
    for await (const file of listFiles(SERVER)) names.push(file.name)
    assert.ok(!names.includes('cancelled.bin'), names.join(', '))
  } finally {
    origin.close()
  }
})

test('an AbortSignal stops the upload for good; what the server has stays', async () => {
  const controller = new AbortController()
  const handle = upload(data, {
    server: SERVER,
    chunkSize: 1024 * 1024,
    signal: controller.signal,
    onProgress: (sent) => { if (sent >= 1024 * 1024) controller.abort() },
  })
  await assert.rejects(handle.finished, /aborted/)
  const url = handle.url
  assert.match(url, /\/files\/[\w-]{22}$/)
  const offset = async () => Number((await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })).headers.get('upload-offset'))
  const stopped = await offset()
  await new Promise((r) => setTimeout(r, 300))
  assert.equal(await offset(), stopped)
  assert.ok(stopped >= 1024 * 1024 && stopped < data.length, `offset ${stopped}`)
})

test('cancel stops the upload and removes it from the server', async () => {
  const handle = upload(data, {
    server: SERVER,
    chunkSize: 1024 * 1024,
    onProgress: (sent) => { if (sent >= 1024 * 1024) handle.cancel() },
  })
  await assert.rejects(handle.finished, /cancelled/)
  const head = await fetch(handle.url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
  assert.equal(head.status, 410) // terminated: tus's Gone
})

test('a download whose bytes do not match the sha256 spigot reports is refused', async () => {
  const lying = await serve((req, res) => {
    res.writeHead(200, { 'Content-Length': String(data.length), ETag: `"${sha256(Buffer.from('other'))}"` })
    res.end(data)
  })
  try {
    await assert.rejects(download(`${lying.url}/f`), /sha256 is [0-9a-f]{64}, not [0-9a-f]{64}/)
  } finally {
    lying.close()
  }
})

test('the file list streams, links are signed, delete removes', async () => {
  const { url } = await upload(Buffer.from('listed bytes'), { server: SERVER, metadata: { filename: 'listed.txt' } }).finished
  const id = url.split('/').pop()
  const listed = []
  for await (const file of listFiles(SERVER)) listed.push(file)
  const mine = listed.find((f) => f.id === id)
  assert.deepEqual([mine.name, mine.size, mine.content_type, mine.url], ['listed.txt', 12, 'text/plain', url])
  assert.deepEqual(await whoami(SERVER), {
    sub: null, scopes: ['admin', 'delete', 'import', 'read', 'sign', 'upload'], admin: true, max_upload_size: null,
  })
  await assert.rejects(signLink(SERVER, id), (e) => e.status === 403 && /--secret/.test(e.message))
  await deleteFile(url)
  assert.equal((await fetch(url)).status, 404)
})

test('listPage gives the newest first, a page at a time, and how many in all', async () => {
  const ids = []
  for (const name of ['page-a.txt', 'page-b.txt', 'page-c.txt']) {
    const { url } = await upload(Buffer.from(name), { server: SERVER, metadata: { filename: name } }).finished
    ids.push(url.split('/').pop())
  }
  const all = []
  for await (const file of listFiles(SERVER)) all.push(file)
  const first = await listPage(SERVER, { limit: 2 })
  assert.deepEqual(first.files.map((f) => f.name), ['page-c.txt', 'page-b.txt'])
  assert.equal(first.total, all.length)
  assert.match(first.next, /\/files\/\?order=newest&limit=2&before=[0-9.]+~[\w-]{22}$/)
  const second = await listPage(SERVER, { next: first.next })
  assert.equal(second.files[0].id, ids[0])
  assert.equal(second.files.length, Math.min(2, all.length - 2))
  const byId = await listPage(SERVER, { order: 'id', limit: 1 })
  assert.equal(byId.files[0].id, all.map((f) => f.id).sort()[0])
  assert.equal(byId.total, null)
  assert.equal(byId.next === null, all.length === 1)
  await assert.rejects(listPage(SERVER, { limit: 0 }), (e) => e.status === 400 && /limit must be/.test(e.message))
})

test('a download goes on after spigot is killed mid-transfer and restarted', { skip: !process.env.SPIGOT_CMD }, async () => {
  const killable = process.env.KILLABLE_URL
  const command = JSON.parse(process.env.SPIGOT_CMD)
  const run = async () => {
    const child = spawn(command[0], command.slice(1), { stdio: 'ignore' })
    for (let i = 0; i < 200; i++) {
      try { if ((await fetch(`${killable}/healthz`)).ok) return child } catch {}
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error('spigot did not start')
  }
  let spigot = await run()
  try {
    const big = randomBytes(192 * 1024 * 1024)
    const { url } = await upload(big, { server: killable, chunkSize: 64 * 1024 * 1024 }).finished
    let killed = null
    const retries = []
    const output = join(dir, 'killed.bin')
    const got = await download(url, {
      output,
      retryDelays: [300, 1000, 2000, 4000],
      onProgress: (received) => {
        if (killed === null && received >= 1024 * 1024) {
          killed = received
          spigot.kill('SIGKILL')
          spigot.once('exit', async () => { spigot = await run() })
        }
      },
      onRetry: (error, received) => retries.push(received),
    })
    assert.ok(retries.length >= 1 && retries[0] < big.length, `retried at ${retries}`)
    assert.deepEqual([got.size, got.sha256, got.verified], [big.length, sha256(big), true])
    assert.equal(sha256(await readFile(output)), sha256(big))
  } finally {
    spigot.kill('SIGKILL')
  }
})

test('straight to S3 through the /s3/ routes, where spigot offers it, with pause and resume', { skip: !process.env.S3_SPIGOT_URL }, async () => {
  const s3 = process.env.S3_SPIGOT_URL
  const config = await getConfig(s3)
  assert.deepEqual(config.direct_uploads, { enabled: true, endpoint: '/s3', storage: 's3' })
  const body = randomBytes(12 * 1024 * 1024 + 7)
  const seen = []
  let paused = false
  const handle = upload(body, {
    server: s3,
    partSize: 5 * 1024 * 1024,
    metadata: { filename: 'direct.bin' },
    onProgress: (sent) => {
      seen.push(sent)
      if (!paused && sent >= 5 * 1024 * 1024) {
        paused = true
        handle.pause()
        setTimeout(() => handle.resume(), 200)
      }
    },
  })
  const { url } = await handle.finished
  assert.ok(paused)
  assert.ok(new Set(seen).size >= 3 && seen.at(-1) === body.length, `progress ${seen}`)
  const resp = await fetch(url)
  assert.match(resp.headers.get('etag'), /-3"$/) // S3's multipart ETag: three parts, sent directly
  assert.equal(sha256(Buffer.from(await resp.arrayBuffer())), sha256(body))
})
