// Uppy 6 as an app would use it to take a file from a link: @uppy/url with spigot as its
// Companion, and @uppy/tus pointed at spigot. spigot imports the link itself, so the tus
// endpoint is never sent a byte; Uppy shows the progress Companion's socket reports.
import Uppy from '@uppy/core'
import Tus from '@uppy/tus'
import Url from '@uppy/url'

// With `pauseAt`, the file is paused once that many bytes are in, as a person pressing
// pause would, and resumed after `pauseFor` ms; `window.originSending()` (the test's) says
// how many responses the origin is sending in the middle of the pause.
window.spigotImport = async ({ spigot, token, url, pauseAt = null, pauseFor = 1500 }) => {
  const auth = { Authorization: `Bearer ${token}` }
  const uppy = new Uppy({ autoProceed: false })
    .use(Url, { companionUrl: spigot, companionHeaders: auth })
    .use(Tus, { endpoint: `${spigot}/files/`, headers: auth })
  const progress = []
  const errors = []
  const pause = { at: null, during: [], sendingMidway: null }
  uppy.on('upload-progress', (file, p) => {
    progress.push(p.bytesUploaded)
    if (pause.at !== null && file.isPaused) pause.during.push(p.bytesUploaded)
    if (pauseAt === null || pause.at !== null || p.bytesUploaded < pauseAt) return
    pause.at = p.bytesUploaded
    uppy.pauseResume(file.id)
    setTimeout(async () => { pause.sendingMidway = await window.originSending() }, pauseFor / 2)
    setTimeout(() => uppy.pauseResume(file.id), pauseFor)
  })
  uppy.on('upload-error', (_, error) => errors.push(String(error)))
  uppy.on('error', (error) => errors.push(String(error)))
  const added = await uppy.getPlugin('Url').addFile(url)
  if (added instanceof Error) return { errors: [String(added)] }
  const [file] = uppy.getFiles()
  const result = await uppy.upload()
  const done = result?.successful?.[0]
  return {
    name: file.name,
    type: file.type,
    size: file.size,
    progress,
    pause,
    errors,
    uploadURL: done?.uploadURL ?? null,
    body: done?.response?.body ?? null,
  }
}
