"""finsync's common kernel: settings, errors, observability, Redis, clients and the service factory.

It imports no layer; the layers import it.
"""
