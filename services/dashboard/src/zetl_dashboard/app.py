"""The dashboard's entry point (`streamlit run`): one page per question, Storefront first."""

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="zetl", layout="wide")
st.navigation(
    [
        st.Page(PAGES / "storefront.py", title="Storefront", default=True),
        st.Page(PAGES / "players.py", title="Players"),
        st.Page(PAGES / "reconciliation.py", title="Reconciliation"),
        st.Page(PAGES / "health.py", title="Platform health", url_path="health"),
    ]
).run()
