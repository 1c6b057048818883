"""zetl loader: turns messy production CSV exports into the normalized source database."""
