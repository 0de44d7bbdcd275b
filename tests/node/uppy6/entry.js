// Uppy 6 as an app would use it against spigot: @uppy/aws-s3 in Companion mode.
// Companion mode sends no custom headers, so the app adds its token to the requests that go
// to spigot (and only those) by wrapping fetch; part uploads go to S3 by XHR, untouched.
import Uppy from '@uppy/core'
import AwsS3 from '@uppy/aws-s3'
import { runUpload } from '../uppy-common.js'

window.spigotUpload = (options) =>
  runUpload(options, ({ endpoint, token, multipart }) => {
    const plain = window.fetch.bind(window)
    window.fetch = (input, init = {}) => {
      const url = typeof input === 'string' ? input : input.url
      if (token && url.startsWith(endpoint)) {
        init = { ...init, headers: { ...(init.headers || {}), Authorization: `Bearer ${token}` } }
      }
      return plain(input, init)
    }
    return new Uppy({ autoProceed: false }).use(AwsS3, {
      companionEndpoint: endpoint,
      shouldUseMultipart: multipart,
    })
  })
