"""The Electrum protocol: sessions, framing, method handlers and subscriptions."""
