"""Redshift's access rule for its system views, emulated: svv_integration*, sys_integration_*
and the lag history are for superusers and members of sys:monitor (locally zetl_sys_monitor,
which the init script grants to the roles that read replication state), nobody else."""

from __future__ import annotations

import pytest

from tests.roles.test_roles import Servers, refused, scalar, servers

pytestmark = [pytest.mark.docker, pytest.mark.slow]

__all__ = ["servers"]  # the platform set up by the init scripts, loaded and replicated

MONITORING = (
    "svv_integration",
    "svv_integration_table_state",
    "sys_integration_table_state_change",
    "sys_integration_activity",
    "zetl.lag_history",
)


def test_monitoring_views_are_readable_by_sys_monitor_members_only(servers: Servers) -> None:
    # Members, orchestration among them although it is NOINHERIT.
    for role in ("zetl_dashboard", "zetl_orchestration", "zetl_transform", "zetl_dq"):
        conn = servers.as_role(role)
        try:
            for relation in MONITORING:
                found = scalar(conn, f"SELECT count(*) FROM {relation}")
                assert found is not None, (role, relation)
            assert str(scalar(conn, "SELECT state FROM svv_integration")).rstrip() in (
                "CdcRefreshState",
                "SchemaDiscoveryState",
            )
        finally:
            conn.close()
    # Not a member: the Redshift front's own login reads none of it.
    front = servers.as_role("zetl_redshift")
    try:
        for relation in MONITORING:
            assert refused(front, f"SELECT count(*) FROM {relation}"), relation
    finally:
        front.close()
