// @ts-check
// spigot's web page, on spigot-client: upload (drop or pick, several at once, per-file
// progress with speed and time left, pause, resume, cancel, resume after a reload), the
// file list a page at a time, newest first (download, copy link, delete), import from a
// URL, and a token field when the server asks for one. No inline script or style: the
// page runs under `script-src 'self'; style-src 'self'`.
import {
  deleteFile, download, forgetUpload, getConfig, importUrl, listPage, signLink,
  unfinishedUploads, upload, whoami,
} from '../src/index.js'
import { formatBytes, formatDuration, Rate } from './format.js'

const TOKEN_KEY = 'spigot.token'
const server = location.origin

/** @template {HTMLElement} T @param {string} id @returns {T} */
const $ = (id) => /** @type {T} */ (document.getElementById(id))
/** @param {string} id */
const button = (id) => /** @type {HTMLButtonElement} */ ($(id))
/** @param {string} id */
const input = (id) => /** @type {HTMLInputElement} */ ($(id))

/**
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 */
function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value)
  node.append(...children)
  return node
}

const state = {
  /** @type {import('../src/index.d.ts').Config | null} */
  config: null,
  /** @type {import('../src/index.d.ts').Me | null} */
  me: null,
  token: sessionStorage.getItem(TOKEN_KEY) ?? '',
}

/** @param {string} message @param {boolean} [error] */
function say(message, error = false) {
  const status = $('status')
  status.textContent = message
  status.classList.toggle('error', error)
}

/** @param {unknown} error */
const reason = (error) => (error instanceof Error ? error.message : String(error))

/** @param {string} scope */
const may = (scope) => !!state.me?.scopes.includes(scope)

const authed = () => ({ token: state.token || undefined })

// ---- sign-in ---------------------------------------------------------------------------

async function start() {
  try {
    state.config = await getConfig(server)
  } catch (error) {
    say(`This spigot did not answer: ${reason(error)}`, true)
    return
  }
  const limit = state.config.limits.max_upload_size
  $('limits').textContent = limit ? `Up to ${formatBytes(limit)} per file.` : ''
  const needsToken = state.config.auth !== 'none'
  $('token-form').hidden = !needsToken
  if (needsToken && !state.token) {
    say('This spigot needs an access token: paste one above to upload and see your files.')
    $('token').focus()
    return
  }
  await signIn()
}

async function signIn() {
  try {
    state.me = await whoami(server, authed())
  } catch (error) {
    state.me = null
    sessionStorage.removeItem(TOKEN_KEY)
    say(`The token was not accepted: ${reason(error)}`, true)
    enable()
    return
  }
  if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token)
  showSignedIn(!!state.token)
  say(state.me.sub ? `Signed in as ${state.me.sub}.` : '')
  enable()
  await Promise.all([refresh(), showUnfinished()])
}

/** @param {boolean} signedIn */
function showSignedIn(signedIn) {
  $('token-entry').hidden = signedIn
  $('who').hidden = !signedIn
  $('who').textContent = signedIn ? `Signed in${state.me?.sub ? ` as ${state.me.sub}` : ''}` : ''
  $('token-forget').hidden = !signedIn
}

function enable() {
  const uploads = may('upload')
  $('drop').dataset.disabled = String(!uploads)
  button('browse').disabled = !uploads
  const importing = may('import') && !!state.config?.imports
  $('import-card').hidden = !importing
  const importButton = /** @type {HTMLButtonElement} */ ($('import-form').querySelector('button'))
  importButton.disabled = !importing
  button('refresh').disabled = !may('read')
}

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault()
  state.token = input('token').value.trim()
  input('token').value = ''
  signIn()
})
$('token-forget').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY)
  state.token = ''
  state.me = null
  showSignedIn(false)
  clearFiles()
  enable()
  say('Signed out.')
})

// ---- uploads ---------------------------------------------------------------------------

/** @param {File} file */
function addUpload(file) {
  const bar = /** @type {HTMLProgressElement} */ (el('progress', { max: String(file.size || 1), value: '0', 'aria-label': `Upload of ${file.name}` }))
  const stats = el('span', { class: 'stats' }, [`0 B of ${formatBytes(file.size)}`])
  const toggle = el('button', { type: 'button', 'data-action': 'pause' }, ['Pause'])
  const cancel = el('button', { type: 'button', class: 'danger', 'data-action': 'cancel' }, ['Cancel'])
  toggle.setAttribute('aria-label', `Pause ${file.name}`)
  cancel.setAttribute('aria-label', `Cancel ${file.name}`)
  const row = el('li', { class: 'transfer', 'data-state': 'uploading', 'data-name': file.name }, [
    el('span', { class: 'name' }, [file.name]),
    el('span', { class: 'controls' }, [toggle, cancel]),
    bar,
    stats,
  ])
  $('uploads').prepend(row)
  const rate = new Rate()
  /** @param {string} name @param {string} label */
  const setToggle = (name, label) => {
    toggle.dataset.action = name
    toggle.textContent = label
    toggle.setAttribute('aria-label', `${label} ${file.name}`)
  }
  const handle = upload(file, {
    server,
    ...authed(),
    config: state.config ?? undefined,
    direct: false, // tus: resumes to the byte, after a reload or a restart of spigot
    metadata: { filename: file.name, filetype: file.type || 'application/octet-stream' },
    onProgress: (sent, total) => {
      bar.value = sent
      const speed = rate.sample(sent)
      const left = speed > 0 && total ? (total - sent) / speed : null
      stats.textContent = `${formatBytes(sent)} of ${formatBytes(total ?? file.size)}` +
        (speed > 0 ? ` · ${formatBytes(speed)}/s` : '') +
        (left !== null ? ` · ${formatDuration(left)} left` : '')
    },
  })
  /** @param {Promise<{ url: string }>} finished */
  const watch = (finished) =>
    finished.then(
      ({ url }) => {
        row.dataset.state = 'done'
        bar.value = bar.max
        stats.replaceChildren(`Done: ${formatBytes(file.size)} · `, el('a', { href: url }, ['open']))
        toggle.remove()
        cancel.remove()
        say(`Uploaded ${file.name}.`)
        refresh()
        showUnfinished()
      },
      (error) => {
        if (row.dataset.state === 'cancelled') return
        row.dataset.state = 'failed'
        stats.textContent = `Stopped: ${reason(error)}`
        setToggle('resume', 'Resume')
      },
    )
  watch(handle.finished)
  toggle.addEventListener('click', () => {
    if (toggle.dataset.action === 'pause') {
      handle.pause()
      row.dataset.state = 'paused'
      stats.textContent = `Paused at ${formatBytes(bar.value)} of ${formatBytes(file.size)}`
      setToggle('resume', 'Resume')
    } else {
      const failed = row.dataset.state === 'failed'
      row.dataset.state = 'uploading'
      rate.reset()
      setToggle('pause', 'Pause')
      const finished = handle.resume()
      if (failed) watch(finished)
    }
  })
  cancel.addEventListener('click', async () => {
    row.dataset.state = 'cancelled'
    await handle.cancel()
    row.remove()
    say(`Cancelled ${file.name}.`)
  })
}

/** @param {FileList | File[] | null} files */
function addFiles(files) {
  if (!may('upload')) return
  for (const file of files ?? []) addUpload(file)
}

const picker = input('picker')
$('browse').addEventListener('click', () => picker.click())
picker.addEventListener('change', () => {
  addFiles(picker.files)
  picker.value = ''
})
const drop = $('drop')
drop.addEventListener('dragover', (event) => {
  event.preventDefault()
  drop.classList.add('over')
})
drop.addEventListener('dragleave', () => drop.classList.remove('over'))
drop.addEventListener('drop', (event) => {
  event.preventDefault()
  drop.classList.remove('over')
  addFiles(event.dataTransfer?.files ?? null)
})

// After a reload: what tus-js-client remembers. A browser cannot reopen a file by itself,
// so the person picks it again; tus-js-client's fingerprint finds where it stopped.
async function showUnfinished() {
  const list = $('unfinished-list')
  const found = may('upload') ? await unfinishedUploads() : []
  const running = new Set([...document.querySelectorAll('#uploads [data-state="uploading"], #uploads [data-state="paused"], #uploads [data-state="failed"]')].map((r) => /** @type {HTMLElement} */ (r).dataset.name))
  const shown = found.filter((u) => !running.has(u.name ?? ''))
  list.replaceChildren(...shown.map((u) => {
    const name = u.name ?? 'unnamed file'
    const resume = el('button', { type: 'button', class: 'primary' }, ['Resume'])
    const discard = el('button', { type: 'button', class: 'danger' }, ['Discard'])
    resume.setAttribute('aria-label', `Resume ${name}`)
    discard.setAttribute('aria-label', `Discard ${name}`)
    resume.addEventListener('click', () => resumeUnfinished(u))
    discard.addEventListener('click', async () => {
      await forgetUpload(u, { ...authed(), terminate: true })
      showUnfinished()
    })
    const when = u.started ? `, started ${new Date(u.started).toLocaleString()}` : ''
    return el('li', { 'data-name': name }, [el('span', {}, [`${name} (${u.size === null ? 'size unknown' : formatBytes(u.size)}${when})`]), resume, discard])
  }))
  $('unfinished').hidden = shown.length === 0
}

/** @param {import('../src/index.d.ts').Unfinished} unfinished */
function resumeUnfinished(unfinished) {
  const again = input('resume-picker')
  again.onchange = () => {
    const file = again.files?.[0]
    again.value = ''
    if (!file) return
    if (unfinished.size !== null && file.size !== unfinished.size) {
      say(`${file.name} is not the file that was being uploaded (${formatBytes(unfinished.size)}).`, true)
      return
    }
    addUpload(file)
    showUnfinished()
  }
  again.click()
}

// ---- imports ---------------------------------------------------------------------------

$('import-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const field = input('import-url')
  const url = field.value.trim()
  field.value = ''
  const bar = /** @type {HTMLProgressElement} */ (el('progress', { 'aria-label': `Import of ${url}` }))
  const stats = el('span', { class: 'stats' }, ['Waiting for the first bytes…'])
  // Cancel stops the import on the server too, which removes what it stored.
  const cancel = el('button', { type: 'button', class: 'danger', 'data-action': 'cancel' }, ['Cancel'])
  cancel.setAttribute('aria-label', `Cancel the import of ${url}`)
  const stopped = new AbortController()
  cancel.addEventListener('click', () => {
    row.dataset.state = 'cancelled'
    stopped.abort()
  })
  const row = el('li', { class: 'transfer', 'data-state': 'uploading' }, [el('span', { class: 'name' }, [url]), el('span', { class: 'controls' }, [cancel]), bar, stats])
  $('imports').prepend(row)
  const rate = new Rate()
  try {
    const file = await importUrl(server, url, {
      ...authed(),
      signal: stopped.signal,
      onProgress: (bytes, total) => {
        if (total) {
          bar.max = total
          bar.value = bytes
        }
        const speed = rate.sample(bytes)
        stats.textContent = `${formatBytes(bytes)}${total ? ` of ${formatBytes(total)}` : ''}${speed > 0 ? ` · ${formatBytes(speed)}/s` : ''}`
      },
    })
    row.dataset.state = 'done'
    bar.max = 1
    bar.value = 1
    stats.textContent = `Imported ${file.name ?? file.id}: ${formatBytes(file.size)}`
    refresh()
  } catch (error) {
    if (row.dataset.state === 'cancelled') {
      row.remove()
      say(`Cancelled the import of ${url}.`)
      return
    }
    row.dataset.state = 'failed'
    stats.textContent = `Failed: ${reason(error)}`
  } finally {
    cancel.remove()
  }
})

// ---- files -----------------------------------------------------------------------------

// Rows come a hundred at a time, newest first, as pages the server picks
// (`GET /files/?order=newest`): tens of thousands of files would make a table too long to
// use and slow to build, and the page holds only what it shows. "Show more" asks for the
// next page.
const ROWS_AT_A_TIME = 100
const MAX_PAGE = 1000 // the server's largest page
/** Where the next page is (null when all is shown), and how many files there are in all. */
const pages = { next: /** @type {string | null} */ (null), total: 0, loading: false }

/** The button says how many are not shown yet, or goes once all are. */
function updateMore() {
  const more = $('files-more')
  const rest = Math.max(0, pages.total - $('file-rows').childElementCount)
  more.hidden = pages.next === null
  more.textContent = rest > ROWS_AT_A_TIME
    ? `Show ${ROWS_AT_A_TIME} more (${rest.toLocaleString()} not shown)`
    : rest > 0 ? `Show the last ${rest}` : 'Show more'
  $('files-empty').hidden = pages.total > 0 || $('file-rows').childElementCount > 0
}

/** @param {import('../src/index.d.ts').FileInfo[]} files */
function addRows(files) {
  const fresh = document.createDocumentFragment() // not a spread: a long list passes its limit
  for (const file of files) fresh.append(fileRow(file))
  const first = fresh.firstElementChild
  $('file-rows').append(fresh)
  return first
}

let listing = 0 // which refresh is current: an older one's pages are dropped
$('files-more').addEventListener('click', async () => {
  if (pages.loading || pages.next === null) return // one page at a time: never a row twice
  const more = $('files-more')
  const mine = listing
  pages.loading = true
  more.setAttribute('aria-busy', 'true')
  try {
    const page = await listPage(server, { ...authed(), next: pages.next, limit: ROWS_AT_A_TIME })
    if (mine !== listing) return // a refresh took over
    const first = addRows(page.files)
    pages.next = page.next
    pages.total = page.total ?? pages.total
    const moved = document.activeElement === more
    updateMore()
    // The button goes once all is shown: focus moves to the rows it added, not to the page.
    if (moved && more.hidden) first?.querySelector('a')?.focus()
  } catch (error) {
    say(`The file list failed: ${reason(error)}`, true)
  } finally {
    pages.loading = false
    more.removeAttribute('aria-busy')
  }
})

/** The table with no rows and nothing to show more of (signed out, or not allowed to read). */
function clearFiles() {
  ++listing
  $('file-rows').replaceChildren()
  Object.assign(pages, { next: null, total: 0 })
  updateMore()
}

/** The table anew, as many rows as it had: a refresh after an upload keeps what "Show
 * more" opened. */
async function refresh() {
  if (!may('read')) return
  const mine = ++listing
  const wanted = Math.max(ROWS_AT_A_TIME, $('file-rows').childElementCount)
  /** @type {import('../src/index.d.ts').FileInfo[]} */
  const files = []
  let next = null
  let total = 0
  try {
    do {
      const limit = Math.min(MAX_PAGE, wanted - files.length)
      const page = await listPage(server, { ...authed(), limit, ...(next ? { next } : {}) })
      if (mine !== listing) return // a newer refresh took over
      files.push(...page.files)
      next = page.next
      if (page.total !== null) total = page.total
    } while (next !== null && files.length < wanted)
  } catch (error) {
    say(`The file list failed: ${reason(error)}`, true)
    return
  }
  $('file-rows').replaceChildren()
  addRows(files)
  Object.assign(pages, { next, total })
  updateMore()
}
$('refresh').addEventListener('click', refresh)

/** Plain links where anyone may download; signed ones where a token is needed.
 * @param {import('../src/index.d.ts').FileInfo} file @returns {Promise<string | null>} */
async function shareable(file) {
  if (state.config?.auth === 'none' || state.config?.public_downloads) return file.url
  if (state.config?.signed_links && may('sign')) return (await signLink(server, file.id, authed())).url
  return null
}

/** @param {string} url @param {string} name */
function save(url, name) {
  const link = el('a', { href: url, download: name })
  document.body.append(link)
  link.click()
  link.remove()
}

/** @param {import('../src/index.d.ts').FileInfo} file */
function fileRow(file) {
  const name = file.name ?? file.id
  const get = el('a', { href: `${file.url}?download=1`, download: name }, ['Download'])
  get.setAttribute('aria-label', `Download ${name}`)
  get.addEventListener('click', async (event) => {
    if (state.config?.auth === 'none' || state.config?.public_downloads) return
    event.preventDefault()
    try {
      const url = await shareable(file)
      if (url) {
        save(`${url}${url.includes('?') ? '&' : '?'}download=1`, name)
      } else { // no signed links here: fetch with the token, verify, then save the Blob
        say(`Downloading ${name}…`)
        const got = await download(file.url, authed())
        save(URL.createObjectURL(/** @type {Blob} */ (got.blob)), name)
        say(`Downloaded ${name}${got.verified ? ', sha256 checked' : ''}.`)
      }
    } catch (error) {
      say(`Download failed: ${reason(error)}`, true)
    }
  })
  const copy = el('button', { type: 'button' }, ['Copy link'])
  copy.setAttribute('aria-label', `Copy a link to ${name}`)
  copy.addEventListener('click', async () => {
    try {
      const url = await shareable(file)
      if (!url) {
        say('Links need signing, which this spigot has off (--secret).', true)
        return
      }
      await navigator.clipboard.writeText(url)
      say(`Copied a link to ${name}${url === file.url ? '' : ' (valid for an hour)'}.`)
    } catch (error) {
      say(`Could not copy the link: ${reason(error)}`, true)
    }
  })
  const actions = [get, copy]
  if (may('delete')) {
    const remove = el('button', { type: 'button', class: 'danger' }, ['Delete'])
    remove.setAttribute('aria-label', `Delete ${name}`)
    remove.addEventListener('click', async () => {
      if (!remove.classList.contains('confirm')) { // a second press deletes: no dialog
        remove.classList.add('confirm')
        remove.textContent = 'Really delete?'
        setTimeout(() => {
          remove.classList.remove('confirm')
          remove.textContent = 'Delete'
        }, 4000)
        return
      }
      try {
        await deleteFile(file.url, authed())
        row.remove()
        pages.total = Math.max(0, pages.total - 1)
        updateMore()
        say(`Deleted ${name}.`)
      } catch (error) {
        say(`Could not delete ${name}: ${reason(error)}`, true)
      }
    })
    actions.push(remove)
  }
  const added = new Date(file.created * 1000)
  const row = el('tr', { 'data-id': file.id }, [
    el('td', { class: 'name' }, [name]),
    el('td', { class: 'size' }, [formatBytes(file.size)]),
    el('td', { class: 'type' }, [file.content_type ?? '']),
    el('td', { class: 'date' }, [el('time', { datetime: added.toISOString() }, [added.toLocaleString()])]),
    el('td', { class: 'actions' }, [el('div', {}, actions)]),
  ])
  return row
}

start()
