// spigot-client under Node 20 against a running spigot at $SPIGOT_URL (started by
// tests/test_client_js.py with --proxy-allow-private, for the import's local origin).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { download, events, getConfig, importUrl, parseFrame, upload } from '../src/index.js'

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
