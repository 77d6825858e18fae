"""Subcommands of the `fyp` CLI, one module per group; each exposes `register(app)`."""
