// Types of spigot-client (src/index.js, which `tsc --noEmit` checks against these).
import type { UrlStorage } from 'tus-js-client'
import type { Readable } from 'node:stream'

export interface Config {
  auth: 'none' | 'jwt' | 'hook'
  public_downloads: boolean
  limits: { max_request_size: number | null; max_upload_size: number | null }
  tus: { endpoint: string; version: string; extensions: string[]; checksum_algorithms: string[] }
  direct_uploads: { enabled: boolean; endpoint: string | null; storage: 's3' | 'local' }
  signed_links: boolean
  imports: boolean
}

export interface UploadOptions {
  /** spigot's base URL; or give `uploadLink` */
  server?: string
  /** a signed upload link: no token needed */
  uploadLink?: string
  token?: string
  metadata?: Record<string, string>
  chunkSize?: number
  retryDelays?: number[]
  /** where interrupted uploads are remembered (tus-js-client's; localStorage by default) */
  urlStorage?: UrlStorage
  onProgress?: (bytesSent: number, bytesTotal: number | null) => void
  /** stops the upload for good; what the server has stays, so a later upload() resumes */
  signal?: AbortSignal
  /** 'auto' (default): straight to S3 where the server's storage is S3; else tus */
  direct?: boolean | 'auto'
  /** the server's GET /api/config, if already read */
  config?: Config
  /** direct uploads: bytes per part (at least 5 MiB; default 8 MiB) */
  partSize?: number
}

export interface UploadHandle {
  /** settles when the upload is complete, or fails; after a failure resume() gives a new one */
  readonly finished: Promise<{ url: string }>
  /** the upload's URL, once the server has made it */
  readonly url: string | undefined
  pause(): void
  resume(): Promise<{ url: string }>
  /** stops, and removes what the server has */
  cancel(): Promise<void>
}

export interface Unfinished {
  /** tus-js-client's URL storage key */
  key: string
  name: string | null
  size: number | null
  /** ms since the epoch */
  started: number | null
  uploadUrl: string | null
}

export interface Me {
  sub: string | null
  scopes: string[]
  admin: boolean
  max_upload_size: number | null
}

export interface FileInfo {
  id: string
  name: string | null
  size: number
  sha256: string | null
  url: string
  content_type: string | null
  created: number
  owner: string | null
}

export interface PageOptions extends Call {
  /** 'newest' (the default) or 'id', the store's own order, which costs less per page. */
  order?: 'newest' | 'id'
  /** Files in the page, 1-1000; 100 unless given. */
  limit?: number
  /** A previous page's `next`: the page after it, asked as that page was, but for `limit`. */
  next?: string
}

export interface FilePage {
  files: FileInfo[]
  /** The next page's URL, for `PageOptions.next`; null on the last page. */
  next: string | null
  /** How many files the caller may see in all (newest order only; null in id order). */
  total: number | null
}

export interface DownloadOptions {
  token?: string
  /** Node: write here; browsers get a Blob */
  output?: string
  /** waits before each retry after a network or server error (default 0, 1, 2, 4, 8 s) */
  retryDelays?: number[]
  onProgress?: (bytesReceived: number, bytesTotal: number) => void
  /** before each retry: what failed, and the bytes kept, from which it goes on */
  onRetry?: (error: Error, bytesReceived: number) => void
  signal?: AbortSignal
}

export interface Downloaded {
  size: number
  sha256: string
  /** whether spigot reported a sha256 that the bytes were checked against */
  verified: boolean
  blob?: Blob
}

export type SpigotEvent =
  | { type: 'progress'; id: string; data: any }
  | { type: 'complete'; id: string; data: any }
  | { type: 'terminated' | 'expired' | 'error' | string; id: string; data: any }

export interface EventsOptions {
  token?: string
  until?: string[]
  retries?: number
  signal?: AbortSignal
}

export interface ImportOptions extends EventsOptions {
  name?: string
  onProgress?: (bytes: number, total: number | null) => void
  /** Aborting also cancels the import on the server (DELETE /imports/{id}). */
  signal?: AbortSignal
}

export class SpigotError extends Error {
  status?: number
  constructor(message: string, status?: number)
}

interface Call {
  token?: string
  signal?: AbortSignal
}

export function getConfig(server: string, options?: Call): Promise<Config>
export function whoami(server: string, options?: Call): Promise<Me>
export function listFiles(server: string, options?: Call): AsyncGenerator<FileInfo>
export function listPage(server: string, options?: PageOptions): Promise<FilePage>
export function deleteFile(fileUrl: string, options?: Call): Promise<void>
export function signLink(
  server: string,
  id: string,
  options?: Call & { expiresIn?: string | number },
): Promise<{ url: string; expires: number }>
export function upload(file: Blob | File | Uint8Array | Readable, options: UploadOptions): UploadHandle
export function unfinishedUploads(options?: { urlStorage?: UrlStorage }): Promise<Unfinished[]>
export function forgetUpload(
  unfinished: Unfinished,
  options?: { urlStorage?: UrlStorage; token?: string; terminate?: boolean },
): Promise<void>
export function download(url: string, options?: DownloadOptions): Promise<Downloaded>
export function events(server: string, id: string, options?: EventsOptions): AsyncGenerator<SpigotEvent>
export function parseFrame(frame: string): SpigotEvent | null
export function importUrl(
  server: string,
  url: string,
  options?: ImportOptions,
): Promise<FileInfo>
