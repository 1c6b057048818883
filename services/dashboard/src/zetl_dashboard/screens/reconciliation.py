"""Reconciliation: transactions whose lines do not add up to their total."""

from zetl_dashboard.views import page, reconciliation

page("Reconciliation", reconciliation)
