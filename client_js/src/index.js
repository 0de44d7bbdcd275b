// @ts-check
/**
 * spigot-client: the JavaScript client of spigot, for browsers and Node 20.
 *
 * - `getConfig(server)`: what a spigot offers (GET /api/config), so one client fits any.
 * - `upload(file, options)`: a resumable upload, over tus (tus-js-client) or, where spigot
 *   sends the bytes straight to S3, its /s3/ routes; progress, pause, resume, cancel, an
 *   AbortSignal, a token or an upload link.
 * - `download(url, options)`: a streaming download that resumes after a network error from
 *   the bytes it has, with If-Range, and checks the sha256 spigot reports.
 * - `events(server, id)`: the upload's typed events, reconnecting with Last-Event-ID.
 * - `importUrl(server, url)`: an import, with its progress, resolved with the file.
 * - `listFiles`, `listPage`, `deleteFile`, `signLink`, `whoami`: what the web page is built from.
 */
export { SpigotError } from './http.js'
export { getConfig, whoami, listFiles, listPage, deleteFile, signLink, importUrl } from './api.js'
export { upload, unfinishedUploads, forgetUpload } from './upload.js'
export { download } from './download.js'
export { events, parseFrame } from './events.js'
