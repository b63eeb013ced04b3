"""The ledger's revisions, one file each, named ``<revision>_<slug>.py``; written and reviewed by hand."""
