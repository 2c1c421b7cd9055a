"""CLI subcommands, one module each; see tonebridge.cli."""
