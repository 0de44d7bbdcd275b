// tus-js-client (the client Uppy uses) against a running spigot at $SPIGOT_URL.
// Run by tests/test_tus_js.py: node --test tus.test.mjs
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { Upload } from 'tus-js-client'
import { MemoryUrlStorage } from './url-storage.mjs'
import { abortAt, resumeStored } from './resume.mjs'

const BASE = process.env.SPIGOT_URL
const endpoint = `${BASE}/files/`
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex')

function upload(input, options = {}) {
  return new Promise((resolve, reject) => {
    const u = new Upload(input, {
      endpoint,
      retryDelays: [0, 100, 500],
      metadata: { filename: 'data.bin', filetype: 'application/octet-stream' },
      ...options,
      onSuccess: () => resolve(u),
      onError: reject,
    })
    u.start()
  })
}

async function download(url) {
  const resp = await fetch(url)
  assert.equal(resp.status, 200)
  return Buffer.from(await resp.arrayBuffer())
}

const data = randomBytes(6 * 1024 * 1024 + 77)

test('default options', async () => {
  const u = await upload(data)
  assert.equal(sha256(await download(u.url)), sha256(data))
})

test('chunkSize', async () => {
  const u = await upload(data, { chunkSize: 1024 * 1024 })
  assert.equal(sha256(await download(u.url)), sha256(data))
})

test('parallelUploads: 4 (concatenation)', async () => {
  const u = await upload(data, { parallelUploads: 4 })
  const head = await fetch(u.url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
  assert.match(head.headers.get('upload-concat'), /^final;(\/files\/[\w-]{22} ?){4}$/)
  assert.equal(sha256(await download(u.url)), sha256(data))
})

test('uploadDataDuringCreation', async () => {
  const u = await upload(data, { uploadDataDuringCreation: true, chunkSize: 2 * 1024 * 1024 })
  assert.equal(sha256(await download(u.url)), sha256(data))
})

test('uploadLengthDeferred with a stream', async () => {
  const stream = Readable.from([data.subarray(0, 3_000_000), data.subarray(3_000_000)])
  const u = await upload(stream, { uploadLengthDeferred: true, chunkSize: 1024 * 1024 })
  assert.equal(sha256(await download(u.url)), sha256(data))
})

test('abort, then resume from the stored URL', async () => {
  const urlStorage = new MemoryUrlStorage()
  const options = { chunkSize: 1024 * 1024, urlStorage, storeFingerprintForResuming: true }
  const firstUrl = await abortAt(data, { endpoint, ...options }, 2 * 1024 * 1024)
  const headAfterAbort = await fetch(firstUrl, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
  assert.equal(headAfterAbort.headers.get('upload-offset'), String(2 * 1024 * 1024))

  const resumed = await resumeStored(data, { endpoint, ...options })
  assert.equal(resumed.url, firstUrl) // the same upload, continued, not a new one
  assert.equal(sha256(await download(resumed.url)), sha256(data))
})
