"""The node's web layer: app factory, JSON API blueprints and their OpenAPI description."""

from .app import create_app

__all__ = ["create_app"]
