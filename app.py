"""Streamlit entry point: `streamlit run app.py`.

The app gathers inputs, calls the engine and renders; the pages live in ui/ and the shared
session state (catalog with this session's prices, current scenario) in ui/state.py.
"""

from __future__ import annotations

import streamlit as st

from ui import state

st.set_page_config(page_title="LLM self-hosting planner", layout="wide",
                   menu_items={"About": "Self-hosting cost and TCO planner for open-weight LLMs."})
state.read_url_once()
state.pages_navigation().run()
