// tus-js-client speaking the IETF resumable-upload draft (protocol: 'ietf-draft-03', which
// sends interop version 5, and 'ietf-draft-05', version 6) against a running spigot at
// $SPIGOT_URL. Run by tests/test_rufh_clients.py: node --test ietf.test.mjs
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { Upload } from 'tus-js-client'
import { MemoryUrlStorage } from './url-storage.mjs'
import { abortAt, resumeStored } from './resume.mjs'

const BASE = process.env.SPIGOT_URL
const endpoint = `${BASE}/files/`
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex')
const data = randomBytes(5 * 1024 * 1024 + 33)
const VERSIONS = { 'ietf-draft-03': '5', 'ietf-draft-05': '6' }

async function download(url) {
  const resp = await fetch(url)
  assert.equal(resp.status, 200)
  return Buffer.from(await resp.arrayBuffer())
}

for (const [protocol, version] of Object.entries(VERSIONS)) {
  test(`${protocol}: whole file, in 1 MiB appends`, async () => {
    const u = await new Promise((resolve, reject) => {
      const u = new Upload(data, {
        endpoint,
        protocol,
        chunkSize: 1024 * 1024,
        metadata: { filename: 'ietf.bin' },
        onSuccess: () => resolve(u),
        onError: reject,
      })
      u.start()
    })
    const head = await fetch(u.url, { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': version } })
    assert.equal(head.status, 204)
    assert.equal(head.headers.get('upload-complete'), '?1')
    assert.equal(head.headers.get('upload-offset'), String(data.length))
    assert.equal(head.headers.get('upload-draft-interop-version'), version)
    assert.equal(sha256(await download(u.url)), sha256(data))
  })

  test(`${protocol}: abort, then resume from the stored URL`, async () => {
    const urlStorage = new MemoryUrlStorage()
    const options = { protocol, chunkSize: 1024 * 1024, urlStorage, storeFingerprintForResuming: true }
    const firstUrl = await abortAt(data, { endpoint, ...options }, 2 * 1024 * 1024)
    const head = await fetch(firstUrl, { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': version } })
    assert.equal(head.headers.get('upload-offset'), String(2 * 1024 * 1024))
    assert.equal(head.headers.get('upload-complete'), '?0')

    const resumed = await resumeStored(data, { endpoint, ...options })
    assert.equal(resumed.url, firstUrl) // the same upload, continued
    assert.equal(sha256(await download(resumed.url)), sha256(data))
  })
}
