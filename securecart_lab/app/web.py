"""The Flask application: JSON API, health check and the storefront's static files."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import psycopg
from flask import Flask, g, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException

from securecart_lab.app import catalog, orders, static_dir
from securecart_lab.app.cloud import Clients, ReaderLookup, WriterLookup, publish_order_placed
from securecart_lab.app.config import AppConfig
from securecart_lab.app.db import WRITER, Database, DatabaseUnavailable
from securecart_lab.app.errors import ApiError, bad_request, not_found
from securecart_lab.emulator import guard

log = logging.getLogger("securecart.app")

DEFAULT_LIMIT = 24
MAX_LIMIT = 200
# The storefront may be served from another origin (the S3 website endpoint, i.e. the emulator's origin) and call
# this API cross-origin. Only that origin, the app's own and SECURECART_ALLOWED_ORIGINS get a CORS allowance
# (securecart_lab/emulator/guard.py): any other page's requests that could change something are refused.
CORS_HEADERS = {
    "Access-Control-Expose-Headers": "X-SecureCart-Instance, X-SecureCart-DB, Idempotent-Replayed",
    "Vary": "Origin",
}
CORS_PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Accept, Idempotency-Key",
    "Access-Control-Max-Age": "600",
}


def create_app(config: AppConfig) -> Flask:
    """Build the app. No connection is made until the first request needs one; `app.extensions["securecart_db"]` holds the pools."""
    app = Flask(__name__, static_folder=str(static_dir()), static_url_path="/static")
    app.json.sort_keys = False
    clients = Clients(config.aws_endpoint_url) if config.aws_endpoint_url else None
    db = Database(config, ReaderLookup(config, clients), WriterLookup(config, clients))
    app.extensions["securecart_db"] = db
    endpoint_port = urlsplit(config.aws_endpoint_url or "").port
    site_ports = [endpoint_port] if endpoint_port else []

    @app.before_request
    def refuse_foreign_pages():
        reason = guard.check(request.environ, site_ports)
        if reason is not None:
            return jsonify({"error": "forbidden", "message": reason}), 403
        return None

    def routed(route: str) -> None:
        g.db_route = route

    @app.after_request
    def stamp(response):
        response.headers["X-SecureCart-Instance"] = config.instance_id
        if "db_route" in g:
            response.headers["X-SecureCart-DB"] = g.db_route
        origin = request.headers.get("Origin")
        if origin is not None and guard.check(request.environ, site_ports) is None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.update(CORS_HEADERS)
            if request.method == "OPTIONS":
                response.headers.update(CORS_PREFLIGHT_HEADERS)
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return jsonify(error.body()), error.status

    @app.errorhandler(DatabaseUnavailable)
    def database_unavailable(error: DatabaseUnavailable):
        return jsonify({"error": "database_unavailable", "message": error.message}), 503

    @app.errorhandler(psycopg.IntegrityError)
    def integrity_error(error: psycopg.IntegrityError):
        return jsonify({"error": "conflict", "message": f"The database refused the change: {error.diag.message_primary}"}), 409

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        name = (error.name or "error").lower().replace(" ", "_")
        return jsonify({"error": name, "message": error.description}), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify({"error": "internal_error", "message": "Something went wrong; see the app's log."}), 500

    @app.get("/health")
    def health():
        routed(WRITER)
        try:
            db.write(lambda conn: conn.execute("select 1").fetchone())
        except DatabaseUnavailable as error:
            body = {"status": "unavailable", "instance": config.instance_id, "db": "unreachable", "message": error.message}
            return jsonify(body), 503
        return jsonify({"status": "ok", "instance": config.instance_id, "db": "ok"})

    @app.get("/api/products")
    def search_products():
        q = request.args.get("q", "").strip()
        category = request.args.get("category", "").strip()
        limit = _limit(request.args.get("limit"))
        products, route = db.read(lambda conn: catalog.search(conn, q, category, limit))
        routed(route)
        return jsonify({"products": products, "count": len(products)})

    @app.get("/api/products/<sku>")
    def product(sku: str):
        found, route = db.read(lambda conn: catalog.product(conn, sku))
        routed(route)
        if found is None:
            raise not_found("product_not_found", f"No product with SKU {sku}.")
        return jsonify(found)

    @app.get("/api/categories")
    def categories():
        found, route = db.read(catalog.categories)
        routed(route)
        return jsonify({"categories": found})

    @app.post("/api/orders")
    def place_order():
        payload = request.get_json(silent=True)
        order_request = orders.parse_order(payload)
        key = orders.idempotency_key(request.headers.get("Idempotency-Key"), payload)
        routed(WRITER)
        detail = db.write(lambda conn: orders.place_order(conn, order_request, key))
        location = {"Location": f"/api/orders/{detail['orderId']}"}
        if detail.get("replayed"):
            # A retry of an order already placed: the same order, and no second OrderPlaced event.
            body = {"orderId": detail["orderId"], "status": detail["status"], "totalCents": detail["totalCents"], "replayed": True}
            return jsonify(body), 201, {**location, "Idempotent-Replayed": "true"}
        published = publish_order_placed(clients, config.event_bus_name, detail)
        body = {
            "orderId": detail["orderId"],
            "status": "PLACED",
            "totalCents": detail["totalCents"],
            "eventPublished": published,
        }
        return jsonify(body), 201, location

    @app.get("/api/orders/<order_id>")
    def get_order(order_id: str):
        routed(WRITER)
        order = db.write(lambda conn: orders.get_order(conn, order_id))
        if order is None:
            raise not_found("order_not_found", f"No order with id {order_id}.")
        return jsonify(order)

    @app.get("/")
    def storefront():
        return send_from_directory(static_dir(), "index.html")

    # index.html links its assets relatively, so the same files work uploaded flat to an S3 website bucket.
    @app.get("/<any(app.js, config.js, style.css):name>")
    def storefront_asset(name: str):
        return send_from_directory(static_dir(), name)

    return app


def _limit(raw: str | None) -> int:
    if raw in (None, ""):
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise bad_request("invalid_limit", f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(raw)
