"""Alert rules and the pure rule engine: readings, device status and events in, alert events out.

The core here does no I/O: `rules` is the schema of the site file's `alerts:` rules, `engine.evaluate`
turns inputs and an injected `now` into a new state and alert events, `forecast` and `dewpoint` are the
arithmetic behind the messages. Storage, notification and the MQTT process live in other modules.
"""
