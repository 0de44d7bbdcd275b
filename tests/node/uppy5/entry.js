// Uppy 5 as an app would use it against spigot: @uppy/aws-s3 with `endpoint` and `headers`.
import Uppy from '@uppy/core'
import AwsS3 from '@uppy/aws-s3'
import { runUpload } from '../uppy-common.js'

window.spigotUpload = (options) =>
  runUpload(options, ({ endpoint, token, multipart }) =>
    new Uppy({ autoProceed: false }).use(AwsS3, {
      endpoint,
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      shouldUseMultipart: multipart,
    }),
  )
