// Uppy 6 as an app would use it to take a file from a link: @uppy/url with spigot as its
// Companion, and @uppy/tus pointed at spigot. spigot imports the link itself, so the tus
// endpoint is never sent a byte; Uppy shows the progress Companion's socket reports.
import Uppy from '@uppy/core'
import Tus from '@uppy/tus'
import Url from '@uppy/url'

window.spigotImport = async ({ spigot, token, url }) => {
  const auth = { Authorization: `Bearer ${token}` }
  const uppy = new Uppy({ autoProceed: false })
    .use(Url, { companionUrl: spigot, companionHeaders: auth })
    .use(Tus, { endpoint: `${spigot}/files/`, headers: auth })
  const progress = []
  const errors = []
  uppy.on('upload-progress', (_, p) => progress.push(p.bytesUploaded))
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
    errors,
    uploadURL: done?.uploadURL ?? null,
    body: done?.response?.body ?? null,
  }
}
