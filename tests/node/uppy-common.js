// What both Uppy majors' test pages do: make a file of random bytes, upload it with the
// Uppy the caller built, optionally pausing and resuming half-way, and report the result
// with the file's sha256 (computed here, by the browser) for the test to compare.
export async function runUpload({ endpoint, token, size, multipart, pause }, makeUppy) {
  const bytes = new Uint8Array(size)
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536))
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
  const sha256 = [...digest].map((b) => b.toString(16).padStart(2, '0')).join('')
  const uppy = makeUppy({ endpoint, token, multipart })
  const id = uppy.addFile({ name: 'big.bin', type: 'video/mp4', data: new Blob([bytes], { type: 'video/mp4' }) })
  let paused = false
  if (pause) {
    uppy.on('upload-progress', (file, progress) => {
      if (!paused && progress.bytesUploaded >= size / 3) {
        paused = true
        uppy.pauseResume(id)
        setTimeout(() => uppy.pauseResume(id), 1500)
      }
    })
  }
  const result = await uppy.upload()
  const done = result.successful?.[0]
  return {
    sha256,
    paused,
    uploadURL: done?.uploadURL ?? done?.response?.uploadURL ?? null,
    errors: (result.failed || []).map((f) => String(f.error)),
  }
}
