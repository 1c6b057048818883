"""Storefront: revenue over time by publisher and platform, refunds, top games."""

from zetl_dashboard.views import page, storefront

page("Storefront", storefront)
