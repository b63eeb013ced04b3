"""``/v1/erp/{source}/...``: the ERP system API, in canonical terms, over every configured ERP source."""
