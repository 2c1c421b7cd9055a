"""HTTP API bridge: Genesys GWS v2 and Bandwidth Catapult v1 compatible APIs in front of
tonebridge boards (`tonebridge serve`). See docs/api.md."""

from .app import create_app
from .config import ConfigError, ServeConfig, build_config

__all__ = ["ConfigError", "ServeConfig", "build_config", "create_app"]
