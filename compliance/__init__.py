"""CC-16000 實體及環境安全 compliance: records, checks, evidence from telemetry, evidence packs.

The records live in the shared records database (`records`), every write in its hash-chained audit log;
the checks are pure functions of records and telemetry with an injected clock; the process reads the bus
(readings, alerts) like its siblings and publishes each check's result as a reading of class
`compliance`, so alert rules fire on them and Grafana shows them.
"""
