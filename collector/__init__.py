"""Collector side of roomguard: site configuration, polling, outbox, MQTT and the ingest bridge."""
