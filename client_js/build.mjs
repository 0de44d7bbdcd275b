// Builds the web page's assets from web/ and src/ into server/web/static/ (or the directory
// given), where spigot serves them. The build is reproducible: the same sources and the
// same esbuild (package-lock.json) give the same bytes, so `make test` rebuilds into a
// temporary directory and fails if the committed copy differs.
import { build } from 'esbuild'
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const out = resolve(process.argv[2] ?? join(here, '..', 'server', 'web', 'static'))
const COPIED = ['index.html', 'app.css', 'favicon.svg']

/** The page imports the library as its own module, which apps may load too. */
const library = {
  name: 'spigot-client',
  setup(b) {
    b.onResolve({ filter: /\/src\/index\.js$/ }, () => ({ path: './spigot-client.js', external: true }))
  },
}
const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome111', 'firefox115', 'safari16.4'],
  minify: true,
  legalComments: 'eof', // the licences of tus-js-client and hash-wasm travel with them
  external: ['node:*'], // download()'s file output, Node only and never loaded here
  logLevel: 'warning',
}

await rm(out, { recursive: true, force: true })
await mkdir(out, { recursive: true })
await build({ ...common, entryPoints: [join(here, 'src', 'index.js')], outfile: join(out, 'spigot-client.js') })
await build({ ...common, entryPoints: [join(here, 'web', 'app.js')], outfile: join(out, 'app.js'), plugins: [library] })
for (const name of COPIED) await copyFile(join(here, 'web', name), join(out, name))
console.log(`built ${(await readdir(out)).sort().join(', ')} in ${out}`)
