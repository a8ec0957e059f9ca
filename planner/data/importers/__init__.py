"""Importers: LiteLLM API prices, SkyPilot GPU prices, usage exports; and the user's price store.

`load_user_prices()` returns the imported (GPU prices, API prices); `with_user_prices(catalog)`
lays them over a catalog (see store.py for the rule).
"""

from planner.data.importers.store import load_user_prices, prices_dir, with_user_prices

__all__ = ["load_user_prices", "prices_dir", "with_user_prices"]
