"""The daemon's plumbing: composition, writer thread, store process, parser pool, warm-up."""
