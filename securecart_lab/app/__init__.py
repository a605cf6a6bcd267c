"""The SecureCart web application: storefront, product API and order API on PostgreSQL, events to EventBridge.

Run it with `python -m securecart_lab.app`, configured by environment (see AppConfig.from_env)."""

from securecart_lab.app.config import AppConfig, Endpoint
from securecart_lab.app.server import serve
from securecart_lab.app.web import create_app, static_dir

__all__ = ["AppConfig", "Endpoint", "create_app", "serve", "static_dir"]
