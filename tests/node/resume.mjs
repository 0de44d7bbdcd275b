// tus-js-client's pause and resume as an app does it: upload until `at` bytes are stored,
// abort, then start a new Upload that finds the stored URL and continues it. `options`
// must carry the same urlStorage (and storeFingerprintForResuming) for both.
import assert from 'node:assert/strict'
import { Upload } from 'tus-js-client'

export function abortAt(data, options, at) {
  return new Promise((resolve, reject) => {
    const u = new Upload(data, {
      ...options,
      onError: reject,
      onSuccess: () => reject(new Error('should have been aborted')),
      onChunkComplete: (_size, sent) => {
        if (sent >= at) {
          const url = u.url
          u.abort().then(() => resolve(url), reject)
        }
      },
    })
    u.start()
  })
}

export function resumeStored(data, options) {
  return new Promise((resolve, reject) => {
    const u = new Upload(data, { ...options, onError: reject, onSuccess: () => resolve(u) })
    u.findPreviousUploads().then((previous) => {
      assert.equal(previous.length, 1)
      u.resumeFromPreviousUpload(previous[0])
      u.start()
    }, reject)
  })
}
