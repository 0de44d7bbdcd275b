"""Pure HTTP protocol logic: no I/O here, so every rule is a table-driven unit test."""
