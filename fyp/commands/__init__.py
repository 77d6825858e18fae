"""Subcommands of the `fyp` CLI, one module per group; each exposes `register(app)`, and a module that adds to a
group shared with others (`bench`, `serve`, `worker`, declared in fyp/cli.py) is handed that group as well."""
