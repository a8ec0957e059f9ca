"""The Streamlit planner's pages (one module per page) and their shared state and widgets."""
