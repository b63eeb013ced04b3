"""The generic ``http`` kind: watch any system that answers a health path over HTTP."""
