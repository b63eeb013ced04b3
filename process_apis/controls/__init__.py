"""The process layer's controls: the control ledger over HTTP."""
