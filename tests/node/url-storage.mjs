// An in-memory URL store: what a browser's localStorage does for tus-js-client's resuming.
export class MemoryUrlStorage {
  constructor() { this.entries = new Map() }
  async findAllUploads() { return [...this.entries.values()] }
  async findUploadsByFingerprint(fp) {
    return [...this.entries.entries()].filter(([k]) => k.startsWith(fp)).map(([, v]) => v)
  }
  async removeUpload(key) { this.entries.delete(key) }
  async addUpload(fp, upload) {
    const key = `${fp}::${this.entries.size}`
    this.entries.set(key, { ...upload, urlStorageKey: key })
    return key
  }
}

