"""Players: Discord/KYC deposits by country, daily deposits and withdrawals, top depositors."""

from zetl_dashboard.views import page, players

page("Players", players)
