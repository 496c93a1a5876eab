"""Views of a run record, one output format per module (terminal tables,
Markdown, CSV time series)."""
