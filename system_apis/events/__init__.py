"""Ingress of source pushes: the published streams they are appended to, and what is counted on the way."""
