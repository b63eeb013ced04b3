"""process_apis: the cross-system finance flows, with their controls."""
