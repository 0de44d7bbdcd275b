// tus-js-client through a signed upload link, with no token: spigot's answer to "resumed by
// the same user" (tusd#669). Run by tests/test_auth_process.py with $SPIGOT_UPLOAD_LINK;
// writes what it uploaded to $SPIGOT_RESULT for the Python side to download and check.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { Upload } from 'tus-js-client'
import { MemoryUrlStorage } from './url-storage.mjs'
import { abortAt, resumeStored } from './resume.mjs'

const endpoint = process.env.SPIGOT_UPLOAD_LINK
const data = randomBytes(3 * 1024 * 1024 + 11)
const tus = { 'Tus-Resumable': '1.0.0' }

test('create, abort and resume through an upload link', async () => {
  const urlStorage = new MemoryUrlStorage()
  const options = {
    endpoint,
    chunkSize: 1024 * 1024,
    urlStorage,
    storeFingerprintForResuming: true,
    metadata: { filename: 'clip.mp4', filetype: 'video/mp4' },
  }
  const firstUrl = await abortAt(data, options, 1024 * 1024)
  assert.match(firstUrl, /\/files\/[\w-]{22}\?expires=\d+&sig=[0-9a-f]{64}$/)
  const bare = firstUrl.split('?')[0]
  assert.equal((await fetch(bare, { method: 'HEAD', headers: tus })).status, 401)
  const head = await fetch(firstUrl, { method: 'HEAD', headers: tus })
  assert.equal(head.headers.get('upload-offset'), String(1024 * 1024))

  const resumed = await resumeStored(data, options)
  assert.equal(resumed.url, firstUrl)
  const done = await fetch(firstUrl, { method: 'HEAD', headers: tus })
  assert.equal(done.headers.get('upload-offset'), String(data.length))
  const digest = createHash('sha256').update(data).digest('hex')
  writeFileSync(process.env.SPIGOT_RESULT, JSON.stringify({ url: bare, sha256: digest }))
})

test('a type the link does not allow is refused at creation', async () => {
  await assert.rejects(
    new Promise((resolve, reject) => {
      new Upload(Buffer.from('<html>'), {
        endpoint,
        metadata: { filename: 'page.html', filetype: 'text/html' },
        retryDelays: [],
        onError: reject,
        onSuccess: resolve,
      }).start()
    }),
    /response code: 415/,
  )
})
