"""Salesforce CRM orgs, reached over Salesforce's REST API and Outbound Messaging; ``sandbox/`` is a local stand-in
for tests."""
