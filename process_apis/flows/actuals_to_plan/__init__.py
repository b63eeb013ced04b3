"""The actuals-to-plan flow: posted ERP actuals into the planning platform's Actual version, reconciled."""
