"""Grafana dashboards as code: built with grafana-foundation-sdk from the metric catalog
(devices/catalog.yaml) into committed JSON under dashboards/json/, with provisioning files for the
datasource and the dashboard folder.

`roomguard dashboards build` regenerates them; docs/dashboards.md says what each dashboard shows.
"""
