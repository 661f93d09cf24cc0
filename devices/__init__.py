"""Device side of roomguard: readings, profiles, codecs, transports and simulators."""
