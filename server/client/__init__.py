"""`spigot upload` and `spigot download`: the command-line client.

- `upload`:   resumable tus uploads (tuspy), resume state in the user's cache directory.
- `download`: parallel ranges into a partial file that survives a crash, sha256 checked.
- `progress`: one progress bar per transfer (rich) on a terminal, plain lines elsewhere.
"""
