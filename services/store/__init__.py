"""Where events live: tables, dialect differences, ingest, event files, the demo generator, the latency histogram layout."""
