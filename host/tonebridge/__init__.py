"""tonebridge host package: CLI, board link, simulated boards and the HTTP API bridge."""

__version__ = "0.1.0"
