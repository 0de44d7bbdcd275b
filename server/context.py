"""Typed keys for what the application carries, shared by the app factory and the routes."""

from __future__ import annotations

from aiohttp import web

from storage import DataStore

from .lifecycle import Lifecycle
from .settings import Settings

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", DataStore)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)


def settings_of(request: web.Request) -> Settings:
    return request.app[SETTINGS]


def store_of(request: web.Request) -> DataStore:
    return request.app[STORE]


def lifecycle_of(request: web.Request) -> Lifecycle:
    return request.app[LIFECYCLE]
