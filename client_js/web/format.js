// @ts-check
// Numbers as people read them: sizes in binary units, durations, and a transfer's speed
// over the last few seconds (an average since the start hides a stall).

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

/** @param {number} bytes */
export function formatBytes(bytes) {
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`
}

/** @param {number} seconds */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

export class Rate {
  /** @param {number} [windowMs] */
  constructor(windowMs = 3000) {
    this.windowMs = windowMs
    /** @type {[number, number][]} */
    this.samples = []
  }

  reset() {
    this.samples = []
  }

  /** @param {number} bytes @param {number} [now] @returns {number} bytes per second */
  sample(bytes, now = performance.now()) {
    this.samples.push([now, bytes])
    while (this.samples.length > 2 && now - this.samples[0][0] > this.windowMs) this.samples.shift()
    const [t0, b0] = this.samples[0]
    return now > t0 ? ((bytes - b0) * 1000) / (now - t0) : 0
  }
}
