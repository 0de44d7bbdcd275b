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
  signal?: AbortSignal
}

export interface UploadHandle {
  finished: Promise<{ url: string }>
  pause(): void
  resume(): void
}

export interface DownloadOptions {
  token?: string
  /** Node: write here; browsers get a Blob */
  output?: string
  retries?: number
  onProgress?: (bytesReceived: number, bytesTotal: number) => void
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
}

export class SpigotError extends Error {
  status?: number
  constructor(message: string, status?: number)
}

export function getConfig(server: string, options?: { token?: string; signal?: AbortSignal }): Promise<Config>
export function upload(file: Blob | File | Uint8Array | Readable, options: UploadOptions): UploadHandle
export function download(url: string, options?: DownloadOptions): Promise<Downloaded>
export function events(server: string, id: string, options?: EventsOptions): AsyncGenerator<SpigotEvent>
export function parseFrame(frame: string): SpigotEvent | null
export function importUrl(
  server: string,
  url: string,
  options?: ImportOptions,
): Promise<{ id: string; url: string; size: number; sha256: string | null }>
