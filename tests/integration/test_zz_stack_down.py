"""Runs last (file order): `fyp down` stops every service and leaves no process or listening port behind."""

from __future__ import annotations

import os

import pytest

from fyp.stack.process import pid_alive, port_in_use
from fyp.stack.services import all_services
from tests.integration.test_foundation import fyp

pytestmark = pytest.mark.integration


@pytest.mark.skipif(os.environ.get("FYP_KEEP_STACK") == "1", reason="FYP_KEEP_STACK=1 keeps the stack running")
def test_down_stops_everything_and_is_idempotent(settings):
    pids = {s.name: s.pid() for s in all_services(settings)}
    assert all(pids.values()), f"a service was not running before down: {pids}"
    result = fyp("down", "--json")
    assert {s["name"] for s in result["stopped"] if s["was_running"]} == set(pids)
    assert not any(pid_alive(pid) for pid in pids.values())
    for service in all_services(settings):
        assert not any(port_in_use(settings.host, p) for p in service.ports()), f"{service.name} still listens"
    again = fyp("down", "--json")
    assert not any(s["was_running"] for s in again["stopped"])
