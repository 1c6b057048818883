"""Platform health: replication state and lag, data-quality checkpoints, transform runs."""

from zetl_dashboard.views import health, page

page("Platform health", health, business=False)
