"""The proxy's way out and back: `upstream` opens the guarded connection (SSRF checks at
connect time, bounded redirects, timeouts), `relay` moves the body back to the client, and
`zerocopy` is relay's splice(2) path, where the bytes never enter the process."""
