"""Alert notifications: what a channel is given (a Notification) and the channels that deliver it."""
