"""experience_apis: what planners and finance dashboards need, shaped for them."""
