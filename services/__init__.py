"""The domain: schema, ingest, rollups and the questions asked of them. No Flask here."""
