"""The dashboard's entry point (`streamlit run`): one page per question, Storefront first.

The page scripts live in ``screens/``, not ``pages/``: Streamlit takes a ``pages/`` folder
beside the entry point for its older multipage layout, and a direct link (``/health``) to a
freshly started server then ran that script alone, with its file names in the sidebar and
without this file's wide layout."""

from pathlib import Path

import streamlit as st

SCREENS = Path(__file__).resolve().parent / "screens"

st.set_page_config(page_title="zetl", layout="wide")
st.navigation(
    [
        st.Page(SCREENS / "storefront.py", title="Storefront", default=True),
        st.Page(SCREENS / "players.py", title="Players"),
        st.Page(SCREENS / "reconciliation.py", title="Reconciliation"),
        st.Page(SCREENS / "health.py", title="Platform health", url_path="health"),
    ]
).run()
